// Package hubconn is the agent's end of a connection to a hub node: a
// QUIC dial that pins the agent CA, and typed streams that open with a
// request and wait, bounded, for the first answer.
package hubconn

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Dial connects to hub, accepting only a hub whose certificate the CA of
// fingerprint signed; cert, when set, is the agent's client certificate.
func Dial(ctx context.Context, hub string, fingerprint string, cert *tls.Certificate) (*quic.Conn, error) {
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

// Exchange opens a stream of kind, sends req and returns the stream and
// the first answer. An Error answer becomes a *quic.ApplicationError.
func Exchange(ctx context.Context, conn *quic.Conn, kind wire.StreamKind, req *wire.Envelope) (*wire.Stream, *wire.Envelope, error) {
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
