package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestProtocolHandshake: over real QUIC, against a real hub node, an agent
// of this build connects and its host shows its version; an agent that
// speaks only an older protocol than the hub exits at once with the hub's
// one-line advice (an agent of a protocol 1 build is told with the one
// code on which it stops); an agent that speaks only a newer one keeps
// retrying (a rolling upgrade of the hub may be under way) and logs why.
func TestProtocolHandshake(t *testing.T) {
	c := hubtest.New(t, 1, hubtest.Options{})
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: c.Nodes[0].URL()})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(client.Config{Address: c.Nodes[0].URL(), Token: boot.Token})
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "aws-bj", Datacenter: "dc1"}); err != nil {
		t.Fatal(err)
	}
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "aws-bj"})
	hubVersion := version.Get().Version

	// This build: connected, and its version shown on its host.
	curDir := t.TempDir()
	cur, _ := startAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: curDir, Name: "current"})
	hubtest.WaitFor(t, 15*time.Second, "heartbeats acknowledged", func() bool { return cur.Acked() >= 1 })
	hubtest.WaitFor(t, 10*time.Second, "the host's agent version", func() bool {
		h, _, err := admin.Hosts().Get(ctx, cur.HostID(), nil)
		return err == nil && h.AgentVersion == hubVersion
	})

	// What an agent of a protocol 1 build sends: a version, no range.
	code, msg := helloAsProtocol1(t, hubs(c)[0], curDir, cur.HostID())
	if code != wire.CodeUnauthorized || !strings.Contains(msg, "speaks 1..1: upgrade the agent to at least "+hubVersion) {
		t.Fatalf("a protocol 1 Hello: code %d, %q", code, msg)
	}

	// Too old: enrolment works (it has no protocol version), the control
	// stream is refused, and the agent ends with the advice.
	old, err := agent.New(agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "old",
		Protocols: wire.Range{Min: wire.ProtocolMin - 1, Max: wire.ProtocolMin - 1}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = old.Run(rctx)
	if !errors.Is(err, agent.ErrAgentTooOld) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "upgrade the agent to at least "+hubVersion) || !strings.Contains(err.Error(), "this hub speaks protocol "+wire.Supported().String()) {
		t.Fatalf("an agent too old for the hub ended with %v", err)
	}
	if rctx.Err() != nil {
		t.Fatal("the agent too old for the hub retried until the deadline instead of stopping")
	}

	// Newer than the hub: retries with backoff, logging the reason, and
	// never exits on its own.
	var logs syncBuffer
	newer, done := startAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "newer",
		Protocols: wire.Range{Min: wire.ProtocolMax + 1, Max: wire.ProtocolMax + 1}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	hubtest.WaitFor(t, 20*time.Second, "two refused attempts, logged", func() bool {
		return strings.Count(logs.String(), "hub too old for this agent") >= 2
	})
	if !strings.Contains(logs.String(), "upgrade the hub, or run an agent of version "+hubVersion) {
		t.Fatalf("the log does not carry the hub's advice:\n%s", logs.String())
	}
	select {
	case err := <-done:
		t.Fatalf("an agent newer than the hub stopped: %v", err)
	default:
	}
	if newer.Acked() != 0 {
		t.Fatal("an agent newer than the hub got heartbeats acknowledged")
	}
}

// helloAsProtocol1 opens a control stream with the agent identity kept in
// dir and sends the Hello of a protocol 1 agent; it returns the code and
// message of the hub's refusal.
func helloAsProtocol1(t *testing.T, hub, dir, hostID string) (wire.Code, string) {
	t.Helper()
	// The agent keeps its key, certificate and CA in one identity file.
	b, err := os.ReadFile(filepath.Join(dir, "identity"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		KeyPEM  string `json:"key_pem"`
		CertPEM string `json:"cert_pem"`
		CAPEM   string `json:"ca_pem"`
	}
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair([]byte(id.CertPEM), []byte(id.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	caPEM := []byte(id.CAPEM)
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	tc := pki.PinnedTLSConfig(pki.Fingerprint(ca), []string{wire.ALPN})
	tc.Certificates = []tls.Certificate{cert}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, hub, tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte{byte(wire.StreamControl)}); err != nil {
		t.Fatal(err)
	}
	s := wire.NewStream(st, 0)
	if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_Hello{Hello: &wire.Hello{ProtocolVersion: 1, HostId: hostID, AgentVersion: "v0.9"}}}); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	env, err := s.Recv()
	// The refusal comes as an Error message, or as the connection's close
	// when that overtakes it.
	var ae *quic.ApplicationError
	switch {
	case err == nil && env.GetError() != nil:
		return wire.Code(env.GetError().Code), env.GetError().Message
	case errors.As(err, &ae):
		return wire.Code(ae.ErrorCode), ae.ErrorMessage
	}
	t.Fatalf("a protocol 1 Hello got %v, %v; want a refusal", env, err)
	return 0, ""
}
