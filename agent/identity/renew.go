package identity

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/agent/hubconn"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// RenewAt is two thirds into a certificate's lifetime (counted from its
// issue, not from its backdated start).
func RenewAt(c *x509.Certificate) time.Time {
	issued := c.NotBefore.Add(pki.Backdate)
	return issued.Add(c.NotAfter.Sub(issued) * 2 / 3)
}

// Renew asks the hub, over the current mTLS connection, for a certificate
// for a new key, and keeps both on disk before using them. QUIC has no
// post-handshake client auth: the caller reconnects to present the new
// certificate.
func (k *Keeper) Renew(ctx context.Context, conn *quic.Conn) error {
	key, keyPEM, err := pki.NewAgentKey()
	if err != nil {
		return err
	}
	csr, err := pki.CreateCSR(key, k.name)
	if err != nil {
		return err
	}
	_, env, err := hubconn.Exchange(ctx, conn, wire.StreamRenew, &wire.Envelope{Msg: &wire.Envelope_RenewRequest{RenewRequest: &wire.RenewRequest{CsrDer: csr}}})
	if err != nil {
		return err
	}
	resp := env.GetRenewResponse()
	if resp == nil {
		return fmt.Errorf("%w: want RenewResponse", wire.ErrUnknownMessage)
	}
	old := k.cur.Load()
	if err := Save(k.dir, old.HostID, keyPEM, resp.CertPem, old.CAPEM); err != nil {
		return err
	}
	id, err := k.replace()
	if err != nil {
		return err
	}
	k.rotations.Add(1)
	k.log.Info("certificate renewed", "until", id.Cert.Leaf.NotAfter)
	return nil
}
