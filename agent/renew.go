package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// errRotated ends a session whose certificate was renewed: QUIC has no
// post-handshake client auth, so the agent reconnects with the new one.
var errRotated = errors.New("certificate renewed")

// renewAt is two thirds into a certificate's lifetime (counted from its
// issue, not from its backdated start).
func renewAt(c *x509.Certificate) time.Time {
	issued := c.NotBefore.Add(pki.Backdate)
	return issued.Add(c.NotAfter.Sub(issued) * 2 / 3)
}

// renew asks the hub, over the current mTLS connection, for a certificate
// for a new key, and keeps both on disk.
func (a *Agent) renew(ctx context.Context, conn *quic.Conn) error {
	key, keyPEM, err := pki.NewAgentKey()
	if err != nil {
		return err
	}
	csr, err := pki.CreateCSR(key, a.cfg.Name)
	if err != nil {
		return err
	}
	_, env, err := exchange(ctx, conn, wire.StreamRenew, &wire.Envelope{Msg: &wire.Envelope_RenewRequest{RenewRequest: &wire.RenewRequest{CsrDer: csr}}})
	if err != nil {
		return err
	}
	resp := env.GetRenewResponse()
	if resp == nil {
		return fmt.Errorf("%w: want RenewResponse", wire.ErrUnknownMessage)
	}
	old := a.id.Load()
	if err := saveIdentity(a.cfg.DataDir, old.HostID, keyPEM, resp.CertPem, old.CAPEM); err != nil {
		return err
	}
	id, err := loadIdentity(a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.id.Store(id)
	a.rotations.Add(1)
	a.log.Info("certificate renewed", "until", id.Cert.Leaf.NotAfter)
	return nil
}

// Rotations returns how many times the agent renewed its certificate.
func (a *Agent) Rotations() uint64 { return a.rotations.Load() }
