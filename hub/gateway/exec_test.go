package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// fakeAgent is the agent's end of a QUIC connection: it accepts the exec
// streams the gateway opens and answers each with answer.
func fakeAgent(t *testing.T, answer func(st *quic.Stream, s *wire.Stream, start *wire.ExecStart)) *quic.Conn {
	t.Helper()
	ca, err := pki.NewCA("test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{"agent"}, nil, time.Now(), time.Hour)
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
					go func() {
						var kind [1]byte
						io.ReadFull(st, kind[:])
						s := wire.NewStream(st, wire.ExecMaxFrame)
						env, err := wire.RecvExec(s)
						if err != nil || wire.StreamKind(kind[0]) != wire.StreamExec {
							st.CancelWrite(quic.StreamErrorCode(wire.CodeProtocol))
							return
						}
						answer(st, s, env.GetExecStart())
					}()
				}
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{wire.ALPN}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn
}

func send(s *wire.Stream, m proto.Message) {
	switch m := m.(type) {
	case *wire.ExecData:
		s.Send(&wire.Envelope{Msg: &wire.Envelope_ExecData{ExecData: m}})
	case *wire.ExecExit:
		s.Send(&wire.Envelope{Msg: &wire.Envelope_ExecExit{ExecExit: m}})
	case *wire.ExecStart:
		s.Send(&wire.Envelope{Msg: &wire.Envelope_ExecStart{ExecStart: m}})
	case *wire.ExecStarted:
		s.Send(&wire.Envelope{Msg: &wire.Envelope_ExecStarted{ExecStarted: m}})
	}
}

func TestExec(t *testing.T) {
	g := &Gateway{execs: execConns{wait: 500 * time.Millisecond}}
	if _, err := g.Exec(context.Background(), "h1", ExecRequest{Instance: "i-1", Cmd: []string{"ls"}}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("no connection: %v", err)
	}

	// A command: stdin reaches the agent, output and the exit code come back.
	got := make(chan *wire.ExecStart, 1)
	conn := fakeAgent(t, func(st *quic.Stream, s *wire.Stream, start *wire.ExecStart) {
		select {
		case got <- start:
		default:
		}
		if start.Cmd[0] != "silent" {
			send(s, &wire.ExecStarted{})
		}
		switch start.Cmd[0] {
		case "cat":
			var in bytes.Buffer
			for {
				env, err := wire.RecvExec(s)
				if err != nil {
					return
				}
				if d := env.GetExecData(); d != nil && d.Eof {
					break
				} else if d != nil {
					in.Write(d.Data)
				}
			}
			send(s, &wire.ExecData{Stream: wire.ExecStdout, Data: in.Bytes()})
			send(s, &wire.ExecData{Stream: wire.ExecStderr, Data: []byte("done")})
			send(s, &wire.ExecExit{Code: 5})
		case "refuse":
			send(s, &wire.ExecExit{Code: -1, Error: "no instance i-1 on this host"})
		case "garbage":
			st.Write([]byte{3, 0xff, 0xff, 0xff})
		case "start":
			send(s, start) // an agent never sends ExecStart
		case "hang", "silent":
			<-st.Context().Done()
		}
	})
	defer g.trackConn("h1", conn)()
	if !g.Connected("h1") || g.Connected("h2") {
		t.Fatal("Connected does not follow trackConn")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code, err := g.Exec(ctx, "h1", ExecRequest{Instance: "i-1", Cmd: []string{"cat", "-n"}, Stdin: strings.NewReader("hello"), Stdout: &out, Stderr: &errOut})
	if err != nil || code != 5 || out.String() != "hello" || errOut.String() != "done" {
		t.Fatalf("cat: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}
	if s := <-got; s.InstanceId != "i-1" || strings.Join(s.Cmd, " ") != "cat -n" || !s.Stdin || s.Tty {
		t.Fatalf("the agent got %v", s)
	}

	var ee *ExecError
	if _, err := g.Exec(ctx, "h1", ExecRequest{Instance: "i-1", Cmd: []string{"refuse"}}); !errors.As(err, &ee) || ee.Message != "no instance i-1 on this host" {
		t.Fatalf("refusal: %v", err)
	}
	for _, bad := range []string{"garbage", "start"} {
		if _, err := g.Exec(ctx, "h1", ExecRequest{Instance: "i-1", Cmd: []string{bad}}); err == nil || wire.CodeOf(err) != wire.CodeProtocol {
			t.Fatalf("%s from the agent: %v, want a protocol error", bad, err)
		}
	}
	// An agent that never answers (older than exec) fails the exec soon.
	if _, err := g.Exec(ctx, "h1", ExecRequest{Instance: "i-1", Cmd: []string{"silent"}}); err == nil || !strings.Contains(err.Error(), "did not take the exec") {
		t.Fatalf("a silent agent: %v", err)
	}
	// A quiet command is not a silent agent: only the client's going
	// away ends it.
	hctx, hcancel := context.WithTimeout(ctx, time.Second)
	defer hcancel()
	if _, err := g.Exec(hctx, "h1", ExecRequest{Instance: "i-1", Cmd: []string{"hang"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an exec whose client went away: %v", err)
	}
}
