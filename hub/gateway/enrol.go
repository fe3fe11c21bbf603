package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// enroll turns a join token and a CSR into a host and its certificate.
func (g *Gateway) enroll(ctx context.Context, s *wire.Stream) error {
	env, err := s.Recv()
	if err != nil {
		return err
	}
	req := env.GetEnrollRequest()
	if req == nil {
		return fmt.Errorf("%w: want EnrollRequest", wire.ErrUnknownMessage)
	}
	answer := func(e *wire.Error) error {
		return s.Send(&wire.Envelope{Msg: &wire.Envelope_EnrollResponse{EnrollResponse: &wire.EnrollResponse{Error: e}}})
	}
	ca, err := g.ca()
	if err != nil {
		return answer(&wire.Error{Code: uint32(wire.CodeInternal), Message: err.Error()})
	}
	now := g.cfg.Now().UTC()
	id := enrolHostID(req.JoinTokenId, req.CsrDer)
	host := state.Host{ID: id, Name: req.Name, Inventory: inventoryOf(req.Inventory)}
	err = g.commitEnrol(ctx, &state.HostEnrollRequest{TokenID: req.JoinTokenId, SecretHash: pki.HashSecret(req.JoinTokenSecret), Host: host, MachineID: req.MachineId, Time: now})
	if errors.Is(err, state.ErrUnavailable) {
		// Not a refusal: the agent tries again later.
		return answer(&wire.Error{Code: uint32(wire.CodeUnavailable), Message: err.Error()})
	}
	if err != nil {
		msg := err.Error()
		if errors.Is(err, state.ErrRefused) || errors.Is(err, state.ErrConflict) {
			ev := state.Event{Time: now, Type: "join-token.refused", Subject: req.JoinTokenId, Message: fmt.Sprintf("enrolment of %q refused: %s", req.Name, msg)}
			if rerr := g.apply(ctx, state.EventRecordType, &state.EventRecordRequest{Event: ev}); rerr != nil {
				g.log.Warn("record refused enrolment", "err", rerr)
			}
		}
		g.log.Info("enrolment refused", "name", req.Name, "token", req.JoinTokenId, "err", msg)
		return answer(&wire.Error{Code: uint32(wire.CodeUnauthorized), Message: msg})
	}
	h, err := g.cfg.Store.Snapshot().Host(nil, id)
	if err != nil || h == nil {
		return answer(&wire.Error{Code: uint32(wire.CodeInternal), Message: "the host vanished after enrolment"})
	}
	cert, err := ca.SignAgentCSR(req.CsrDer, pki.AgentIdentity{HostID: id, Pool: h.Pool}, now, g.cfg.CertTTL)
	if err != nil {
		return answer(&wire.Error{Code: uint32(wire.CodeProtocol), Message: err.Error()})
	}
	g.log.Info("agent enrolled", "host", id, "name", h.Name, "pool", h.Pool)
	return s.Send(&wire.Envelope{Msg: &wire.Envelope_EnrollResponse{EnrollResponse: &wire.EnrollResponse{CertPem: cert, CaPem: ca.CertPEM(), HostId: id}}})
}

// commitEnrol commits an enrolment. Its answer can be lost after the
// command committed: the leader died before it answered, or the hub node
// that served the agent died before it sent the certificate, and the
// agent asks another. A join token is often single-use, so the retry is
// refused as used up and the agent would be left without a certificate
// for the host it now has. The host id comes from the token and the CSR's
// key (enrolHostID), so once the replica is up to date, finding the host
// means this enrolment, or an earlier try of it by the holder of the same
// key, went through. Without a leader it is tried again, up to
// enrolAttempts times.
func (g *Gateway) commitEnrol(ctx context.Context, req *state.HostEnrollRequest) error {
	err := g.apply(ctx, state.HostEnrollType, req)
	backoff := statusRetryMin
	for attempt := 1; err != nil && attempt < enrolAttempts; attempt++ {
		found, sure := g.enrolled(ctx, req.Host.ID)
		if found {
			return nil
		}
		// A refusal is final only once an up-to-date replica shows no such
		// host: without one (no leader yet after the old one died), a
		// used-up token may be this very enrolment's earlier try.
		if !errors.Is(err, state.ErrUnavailable) && sure {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, statusRetryMax)
		err = g.apply(ctx, state.HostEnrollType, req)
	}
	if err != nil && !errors.Is(err, state.ErrUnavailable) {
		switch found, sure := g.enrolled(ctx, req.Host.ID); {
		case found:
			return nil
		case !sure:
			return fmt.Errorf("%w: %v (no up-to-date replica could tell whether an earlier try went through)", state.ErrUnavailable, err)
		}
	}
	return err
}

// enrolled reports whether host id exists on an up-to-date replica; sure
// is false when no replica could be brought up to date.
func (g *Gateway) enrolled(ctx context.Context, id string) (found, sure bool) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if g.cfg.Cluster.ConsistentRead(rctx) != nil {
		return false, false
	}
	h, _ := g.cfg.Store.Snapshot().Host(nil, id)
	return h != nil, true
}

// enrolHostID names the host an enrolment makes after its join token and
// the public key of its CSR, so that a retried enrolment names the same
// host. Only the key's holder gets a usable certificate for it. A CSR that
// does not parse gets a random id (signing it fails anyway).
func enrolHostID(tokenID string, csrDER []byte) string {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return newHostID()
	}
	sum := sha256.Sum256(append([]byte(tokenID+"\x00"), csr.RawSubjectPublicKeyInfo...))
	return "h-" + hex.EncodeToString(sum[:8])
}

// enrolAttempts bounds the tries of one enrolment's commit (about 20 s
// of backoff): the agent retries a failed enrolment itself.
const enrolAttempts = 15
