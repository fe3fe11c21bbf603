package identity

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/agent/hubconn"
	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// ErrRefused is returned when the hub refuses the join token: the agent
// exits non-zero with the hub's one-line reason.
var ErrRefused = errors.New("enrolment refused")

// Enrolment is what an agent enrols with.
type Enrolment struct {
	// Token is the join token.
	Token string
	// Pool, when set, must be the join token's pool.
	Pool string
	// Hubs are tried in order.
	Hubs []string
	// Inventory describes the host to the hub.
	Inventory *wire.Inventory
	// MachineID is the provisioned machine the install named ("" for a
	// host enrolled by hand): the hub checks it against the token's.
	MachineID string
}

// Enroll enrols unless the keeper has an identity: a refusal ends it with
// ErrRefused, an unreachable or overloaded hub is retried with backoff
// until ctx ends.
func (k *Keeper) Enroll(ctx context.Context, e Enrolment) error {
	for wait := time.Second; k.cur.Load() == nil; wait = min(wait*2, 30*time.Second) {
		err := k.enroll(ctx, e)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || errors.Is(err, ErrRefused) {
			return err
		}
		sleep := time.Duration(rand.Int64N(int64(wait)))
		k.log.Warn("enrolment", "err", err, "retry_in", sleep.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
	}
	return nil
}

// enroll exchanges the join token and a CSR for a certificate.
func (k *Keeper) enroll(ctx context.Context, e Enrolment) error {
	tok, err := pki.ParseJoinToken(e.Token)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	key, keyPEM, err := pendingKey(k.dir)
	if err != nil {
		return err
	}
	csr, err := pki.CreateCSR(key, k.name)
	if err != nil {
		return err
	}
	req := &wire.EnrollRequest{JoinTokenId: tok.ID, JoinTokenSecret: tok.Secret, CsrDer: csr, Name: k.name, Pool: e.Pool, MachineId: e.MachineID, Inventory: e.Inventory}
	var lastErr error
	for _, hub := range e.Hubs {
		conn, err := hubconn.Dial(ctx, hub, tok.CAFingerprint, nil)
		if err != nil {
			if errors.Is(err, pki.ErrCAMismatch) {
				return fmt.Errorf("%w: hub %s: %v", ErrRefused, hub, err)
			}
			lastErr = err
			continue
		}
		resp, err := enrollOn(ctx, conn, req)
		conn.CloseWithError(0, "")
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Error != nil {
			if wire.Code(resp.Error.Code) != wire.CodeUnauthorized {
				lastErr = fmt.Errorf("hub %s: %s", hub, resp.Error.Message) // not a refusal: retry
				continue
			}
			return fmt.Errorf("%w: %s", ErrRefused, resp.Error.Message)
		}
		if ca, err := pki.ParseCertPEM(resp.CaPem); err != nil || pki.Fingerprint(ca) != tok.CAFingerprint {
			return fmt.Errorf("%w: the hub sent a CA that is not the pinned one", ErrRefused)
		}
		if err := Save(k.dir, resp.HostId, keyPEM, resp.CertPem, resp.CaPem); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(k.dir, PendingKeyFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.log.Warn("remove the enrolment key", "err", err)
		}
		if _, err := k.replace(); err != nil {
			return err
		}
		k.log.Info("enrolled", "host", resp.HostId, "hub", hub)
		return nil
	}
	return fmt.Errorf("enrol: no hub answered: %w", lastErr)
}

// PendingKeyFile holds the key of an enrolment not yet answered. Every
// attempt, in this process or after a restart, sends a CSR for the same
// key, so the hub names the same host (its id comes from the token and the
// key) and, when an earlier attempt committed but its answer was lost,
// recognises the retry instead of refusing a single-use token that is now
// used up (a provisioned machine's token always is). It goes once the
// identity is saved.
const PendingKeyFile = "enrol.key"

// pendingKey returns the enrolment key kept in dir, making and keeping a
// new one when there is none (or it does not parse).
func pendingKey(dir string) (crypto.Signer, []byte, error) {
	path := filepath.Join(dir, PendingKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		if key, err := pki.ParseKeyPEM(b); err == nil {
			return key, b, nil
		}
	}
	key, keyPEM, err := pki.NewAgentKey()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(path, keyPEM, 0o600); err != nil {
		return nil, nil, fmt.Errorf("keep the enrolment key: %w", err)
	}
	return key, keyPEM, nil
}

func enrollOn(ctx context.Context, conn *quic.Conn, req *wire.EnrollRequest) (*wire.EnrollResponse, error) {
	_, env, err := hubconn.Exchange(ctx, conn, wire.StreamEnroll, &wire.Envelope{Msg: &wire.Envelope_EnrollRequest{EnrollRequest: req}})
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return &wire.EnrollResponse{Error: &wire.Error{Code: uint32(ae.ErrorCode), Message: ae.ErrorMessage}}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := env.GetEnrollResponse()
	if resp == nil {
		return nil, fmt.Errorf("%w: want EnrollResponse", wire.ErrUnknownMessage)
	}
	return resp, nil
}
