package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// ErrEnrollRefused is returned when the hub refuses the join token: the
// agent exits non-zero with the hub's one-line reason.
var ErrEnrollRefused = errors.New("enrolment refused")

// enrollLoop enrols unless the agent has an identity: a refusal ends the
// agent, an unreachable or overloaded hub is retried with backoff.
func (a *Agent) enrollLoop(ctx context.Context) error {
	for wait := time.Second; a.id.Load() == nil; wait = min(wait*2, 30*time.Second) {
		err := a.enroll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || errors.Is(err, ErrEnrollRefused) {
			return err
		}
		sleep := time.Duration(rand.Int64N(int64(wait)))
		a.log.Warn("enrolment", "err", err, "retry_in", sleep.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
	}
	return nil
}

// enroll exchanges the join token and a CSR for a certificate.
func (a *Agent) enroll(ctx context.Context) error {
	tok, err := pki.ParseJoinToken(a.cfg.Token)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEnrollRefused, err)
	}
	key, keyPEM, err := pki.NewAgentKey()
	if err != nil {
		return err
	}
	csr, err := pki.CreateCSR(key, a.cfg.Name)
	if err != nil {
		return err
	}
	var lastErr error
	for _, hub := range *a.hubs.Load() {
		conn, err := a.dial(ctx, hub, tok.CAFingerprint, nil)
		if err != nil {
			if errors.Is(err, pki.ErrCAMismatch) {
				return fmt.Errorf("%w: hub %s: %v", ErrEnrollRefused, hub, err)
			}
			lastErr = err
			continue
		}
		resp, err := a.enrollOn(ctx, conn, tok, csr)
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
			return fmt.Errorf("%w: %s", ErrEnrollRefused, resp.Error.Message)
		}
		if ca, err := pki.ParseCertPEM(resp.CaPem); err != nil || pki.Fingerprint(ca) != tok.CAFingerprint {
			return fmt.Errorf("%w: the hub sent a CA that is not the pinned one", ErrEnrollRefused)
		}
		if err := saveIdentity(a.cfg.DataDir, resp.HostId, keyPEM, resp.CertPem, resp.CaPem); err != nil {
			return err
		}
		id, err := loadIdentity(a.cfg.DataDir)
		if err != nil {
			return err
		}
		a.id.Store(id)
		a.log.Info("enrolled", "host", resp.HostId, "hub", hub)
		return nil
	}
	return fmt.Errorf("enrol: no hub answered: %w", lastErr)
}

func (a *Agent) enrollOn(ctx context.Context, conn *quic.Conn, tok pki.JoinToken, csr []byte) (*wire.EnrollResponse, error) {
	req := &wire.EnrollRequest{JoinTokenId: tok.ID, JoinTokenSecret: tok.Secret, CsrDer: csr, Name: a.cfg.Name, Pool: a.cfg.Pool, MachineId: a.cfg.MachineID, Inventory: a.inventory()}
	_, env, err := exchange(ctx, conn, wire.StreamEnroll, &wire.Envelope{Msg: &wire.Envelope_EnrollRequest{EnrollRequest: req}})
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

func (a *Agent) dial(ctx context.Context, hub string, fingerprint string, cert *tls.Certificate) (*quic.Conn, error) {
	tc := pki.PinnedTLSConfig(fingerprint, []string{wire.ALPN})
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	// Generous: after a hub restart thousands of agents handshake at once.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return quic.DialAddr(dctx, hub, tc, &quic.Config{MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 10 * time.Second})
}

func openStream(ctx context.Context, conn *quic.Conn, kind wire.StreamKind) (*quic.Stream, error) {
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write([]byte{byte(kind)}); err != nil {
		return nil, err
	}
	return st, nil
}

// answerTimeout bounds the wait for the hub's answer on a new stream.
const answerTimeout = 15 * time.Second

// exchange opens a stream of kind, sends req and returns the stream and the
// first answer. An Error answer becomes a *quic.ApplicationError.
func exchange(ctx context.Context, conn *quic.Conn, kind wire.StreamKind, req *wire.Envelope) (*wire.Stream, *wire.Envelope, error) {
	st, err := openStream(ctx, conn, kind)
	if err != nil {
		return nil, nil, err
	}
	s := wire.NewStream(st, 0)
	if err := s.Send(req); err != nil {
		return nil, nil, err
	}
	// A hub node that accepted the connection but never answers (overloaded,
	// or without a leader for too long) must not hold the agent forever.
	st.SetReadDeadline(time.Now().Add(answerTimeout))
	env, err := s.Recv()
	if err != nil {
		return nil, nil, err
	}
	st.SetReadDeadline(time.Time{})
	if e := env.GetError(); e != nil {
		return nil, nil, &quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(e.Code), ErrorMessage: e.Message}
	}
	return s, env, nil
}
