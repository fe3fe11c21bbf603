package gateway

import (
	"context"
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
	id := newHostID()
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

// commitEnrol commits an enrolment. Without a leader the command may
// still have committed (the leader died before it answered), and a join
// token is often single-use: a blind retry would be refused as used up
// and the agent left without a certificate for the host it now has. The
// host id is this request's own, so once a leader answers, the replica
// tells whether the enrolment went through; only if it did not is it
// tried again, up to enrolAttempts times.
func (g *Gateway) commitEnrol(ctx context.Context, req *state.HostEnrollRequest) error {
	err := g.apply(ctx, state.HostEnrollType, req)
	backoff := statusRetryMin
	for attempt := 1; errors.Is(err, state.ErrUnavailable) && attempt < enrolAttempts; attempt++ {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, statusRetryMax)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rerr := g.cfg.Cluster.ConsistentRead(rctx)
		cancel()
		if rerr != nil {
			continue // still no leader
		}
		if h, _ := g.cfg.Store.Snapshot().Host(nil, req.Host.ID); h != nil {
			return nil
		}
		err = g.apply(ctx, state.HostEnrollType, req)
	}
	return err
}

// enrolAttempts bounds the tries of one enrolment's commit (about 20 s
// of backoff): the agent retries a failed enrolment itself.
const enrolAttempts = 15
