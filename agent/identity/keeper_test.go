package identity

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// testHub is a hub node's enrolment and renewal on loopback: it signs
// CSRs with its CA for the join token it was made with.
type testHub struct {
	ca    *pki.CA
	token pki.JoinToken
	addr  string

	mu sync.Mutex
	// drop is how many enrolments to commit but not answer (a hub that
	// died before it could), keys the public keys of every CSR received.
	drop int
	keys []string
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	ca, err := pki.NewCA("test agent ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pki.NewJoinToken(ca.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{wire.ALPN}, ClientAuth: tls.RequestClientCert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h := &testHub{ca: ca, token: tok, addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go h.serve(conn)
		}
	}()
	return h
}

func (h *testHub) serve(conn *quic.Conn) {
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
		env, err := s.Recv()
		if err != nil {
			return
		}
		refuse := func(msg string) {
			s.Send(&wire.Envelope{Msg: &wire.Envelope_Error{Error: &wire.Error{Code: uint32(wire.CodeUnauthorized), Message: msg}}})
		}
		switch wire.StreamKind(kind[0]) {
		case wire.StreamEnroll:
			req := env.GetEnrollRequest()
			if req.JoinTokenSecret != h.token.Secret {
				refuse("join token unknown")
				continue
			}
			csr, err := x509.ParseCertificateRequest(req.CsrDer)
			if err != nil {
				refuse(err.Error())
				continue
			}
			h.mu.Lock()
			h.keys = append(h.keys, string(csr.RawSubjectPublicKeyInfo))
			drop := h.drop > 0
			h.drop--
			h.mu.Unlock()
			if drop {
				conn.CloseWithError(0, "")
				return
			}
			cert, err := h.ca.SignAgentCSR(req.CsrDer, pki.AgentIdentity{HostID: "h-1", Pool: "p"}, time.Now(), time.Hour)
			if err != nil {
				refuse(err.Error())
				continue
			}
			s.Send(&wire.Envelope{Msg: &wire.Envelope_EnrollResponse{EnrollResponse: &wire.EnrollResponse{HostId: "h-1", CertPem: cert, CaPem: h.ca.CertPEM()}}})
		case wire.StreamRenew:
			certs := conn.ConnectionState().TLS.PeerCertificates
			if len(certs) == 0 {
				refuse("no client certificate")
				continue
			}
			cert, err := h.ca.SignAgentCSR(env.GetRenewRequest().CsrDer, pki.AgentIdentity{HostID: "h-1", Pool: "p"}, time.Now(), time.Hour)
			if err != nil {
				refuse(err.Error())
				continue
			}
			s.Send(&wire.Envelope{Msg: &wire.Envelope_RenewResponse{RenewResponse: &wire.RenewResponse{CertPem: cert}}})
		}
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestEnrollThenRenew: enrolment keeps the hub's answer on disk and in
// use; a renewal replaces the key and certificate (same host, same CA),
// on disk too; a keeper opened on the same dir finds the renewed one.
func TestEnrollThenRenew(t *testing.T) {
	hub := newTestHub(t)
	dir := t.TempDir()
	k, err := Open(dir, "node-1", discard)
	if err != nil || k.Current() != nil || k.HostID() != "" {
		t.Fatalf("a fresh dir: %v %v", k.Current(), err)
	}
	ctx := context.Background()
	if err := k.Enroll(ctx, Enrolment{Token: hub.token.String(), Hubs: []string{hub.addr}}); err != nil {
		t.Fatal(err)
	}
	first := k.Current()
	if k.HostID() != "h-1" || first.CAFP != hub.ca.Fingerprint() {
		t.Fatalf("enrolled as %q with CA %s", k.HostID(), first.CAFP)
	}
	if _, err := os.Stat(filepath.Join(dir, File)); err != nil {
		t.Fatalf("identity not on disk: %v", err)
	}

	conn, err := dialAs(ctx, hub.addr, first)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	if err := k.Renew(ctx, conn); err != nil {
		t.Fatal(err)
	}
	renewed := k.Current()
	if k.Rotations() != 1 || renewed.HostID != "h-1" || renewed.CAFP != first.CAFP ||
		string(renewed.Cert.Certificate[0]) == string(first.Cert.Certificate[0]) {
		t.Fatalf("after renewal: rotations %d, host %q, same certificate %v", k.Rotations(), renewed.HostID,
			string(renewed.Cert.Certificate[0]) == string(first.Cert.Certificate[0]))
	}
	again, err := Open(dir, "node-1", discard)
	if err != nil || string(again.Current().Cert.Certificate[0]) != string(renewed.Cert.Certificate[0]) {
		t.Fatalf("reopened: not the renewed certificate (%v)", err)
	}
}

func dialAs(ctx context.Context, addr string, id *Identity) (*quic.Conn, error) {
	tc := pki.PinnedTLSConfig(id.CAFP, []string{wire.ALPN})
	tc.Certificates = []tls.Certificate{id.Cert}
	return quic.DialAddr(ctx, addr, tc, nil)
}

// TestEnrollRetriesWithTheSameKey: an enrolment whose answer is lost is
// tried again with a CSR for the same key, by the same keeper and by a
// keeper opened on the same dir after a restart, so that the hub, which
// names the host after the token and the key, recognises a retry of an
// enrolment it committed rather than refusing its used-up single-use
// token. The key goes once the identity is saved.
func TestEnrollRetriesWithTheSameKey(t *testing.T) {
	hub := newTestHub(t)
	// Under the lock: the hub's goroutine reads it, and a packet through
	// the loopback is no synchronisation the race detector can see.
	hub.mu.Lock()
	hub.drop = 2
	hub.mu.Unlock()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first, err := Open(dir, "n", discard)
	if err != nil {
		t.Fatal(err)
	}
	e := Enrolment{Token: hub.token.String(), Hubs: []string{hub.addr}}
	if err := first.enroll(ctx, e); err == nil {
		t.Fatal("an unanswered enrolment succeeded")
	}
	restarted, err := Open(dir, "n", discard) // the agent died and came back
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Enroll(ctx, e); err != nil {
		t.Fatal(err)
	}
	hub.mu.Lock()
	keys := hub.keys
	hub.mu.Unlock()
	if len(keys) != 3 || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("%d attempts; the same key each time: %v %v", len(keys), len(keys) == 3 && keys[0] == keys[1], len(keys) == 3 && keys[1] == keys[2])
	}
	pub, err := x509.MarshalPKIXPublicKey(restarted.Current().Cert.PrivateKey.(crypto.Signer).Public())
	if err != nil || string(pub) != keys[0] {
		t.Fatalf("the identity's key is not the one enrolled (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, PendingKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the enrolment key stays after enrolment: %v", err)
	}
}

// TestEnrollRefused: a token the hub does not know, a malformed one, or
// one pinning another CA ends enrolment at once with ErrRefused, and
// nothing is written.
func TestEnrollRefused(t *testing.T) {
	hub := newTestHub(t)
	other, err := pki.NewCA("other", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	unknown := hub.token
	unknown.Secret = "nope"
	foreign := hub.token
	foreign.CAFingerprint = other.Fingerprint()
	for _, tc := range []struct{ name, token string }{
		{"unknown secret", unknown.String()},
		{"malformed", "WJ1.garbage"},
		{"another CA", foreign.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			k, err := Open(dir, "n", discard)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = k.Enroll(ctx, Enrolment{Token: tc.token, Hubs: []string{hub.addr}})
			if !errors.Is(err, ErrRefused) || ctx.Err() != nil {
				t.Fatalf("Enroll: %v, want %v at once", err, ErrRefused)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() != PendingKeyFile {
					t.Errorf("a refused enrolment left %s", e.Name())
				}
			}
			if k.Current() != nil {
				t.Fatalf("a refused enrolment left an identity")
			}
		})
	}
}

// TestRenewAt: two thirds into the lifetime counted from the issue,
// not from the backdated start.
func TestRenewAt(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &x509.Certificate{NotBefore: issued.Add(-pki.Backdate), NotAfter: issued.Add(3 * time.Hour)}
	if got, want := RenewAt(c), issued.Add(2*time.Hour); !got.Equal(want) {
		t.Fatalf("RenewAt %v, want %v", got, want)
	}
}
