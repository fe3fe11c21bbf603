package hubconn

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// fakeHub listens on loopback with a certificate of ca and answers each
// stream by its kind: an EnrollResponse on enrol streams, an Error on
// the others.
func fakeHub(t *testing.T, ca *pki.CA) string {
	t.Helper()
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{wire.ALPN}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					var kind [1]byte
					if _, err := io.ReadFull(st, kind[:]); err != nil {
						return
					}
					s := wire.NewStream(st, 0)
					if _, err := s.Recv(); err != nil {
						return
					}
					if wire.StreamKind(kind[0]) == wire.StreamEnroll {
						s.Send(&wire.Envelope{Msg: &wire.Envelope_EnrollResponse{EnrollResponse: &wire.EnrollResponse{HostId: "h-1"}}})
					} else {
						s.Send(&wire.Envelope{Msg: &wire.Envelope_Error{Error: &wire.Error{Code: uint32(wire.CodeUnauthorized), Message: "not you"}}})
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestExchange: a stream opens with its kind and a request; the first
// answer comes back, and an Error answer is an application error with
// the hub's code and message.
func TestExchange(t *testing.T) {
	ca, err := pki.NewCA("test ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hub := fakeHub(t, ca)
	ctx := context.Background()
	conn, err := Dial(ctx, hub, ca.Fingerprint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	req := &wire.Envelope{Msg: &wire.Envelope_EnrollRequest{EnrollRequest: &wire.EnrollRequest{Name: "n"}}}
	_, env, err := Exchange(ctx, conn, wire.StreamEnroll, req)
	if err != nil || env.GetEnrollResponse().GetHostId() != "h-1" {
		t.Fatalf("enrol stream: %v %v", env, err)
	}
	_, _, err = Exchange(ctx, conn, wire.StreamRenew, req)
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || wire.Code(ae.ErrorCode) != wire.CodeUnauthorized || ae.ErrorMessage != "not you" {
		t.Fatalf("an Error answer gave %v, want the hub's code and message", err)
	}
}

// TestDialRefusesAnotherCA: a hub whose certificate another CA signed is
// refused as not the pinned one.
func TestDialRefusesAnotherCA(t *testing.T) {
	ca, err := pki.NewCA("test ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hub := fakeHub(t, ca)
	conn, err := Dial(context.Background(), hub, other.Fingerprint(), nil)
	if err == nil {
		conn.CloseWithError(0, "")
		t.Fatal("dialled a hub of another CA")
	}
	if !errors.Is(err, pki.ErrCAMismatch) {
		t.Fatalf("dial: %v, want %v", err, pki.ErrCAMismatch)
	}
}
