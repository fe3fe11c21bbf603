package exec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// fakeStream is one exec stream: what the hub sends comes from in; what
// the agent sends and the codes it resets with are recorded.
type fakeStream struct {
	in io.Reader

	mu                  sync.Mutex
	out                 bytes.Buffer
	readCode, writeCode *quic.StreamErrorCode
	closed              bool
}

func (f *fakeStream) Read(p []byte) (int, error) { return f.in.Read(p) }
func (f *fakeStream) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(p)
}
func (f *fakeStream) Close() error { f.mu.Lock(); defer f.mu.Unlock(); f.closed = true; return nil }
func (f *fakeStream) CancelRead(c quic.StreamErrorCode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readCode == nil {
		f.readCode = &c
	}
}
func (f *fakeStream) CancelWrite(c quic.StreamErrorCode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeCode = &c
}

// sent decodes what the agent sent.
func (f *fakeStream) sent(t *testing.T) []*wire.Envelope {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	return sentOf(t, f.out.Bytes())
}

func sentOf(t *testing.T, b []byte) []*wire.Envelope {
	t.Helper()
	s := wire.NewStream(bytes.NewBuffer(b), wire.ExecMaxFrame)
	var out []*wire.Envelope
	for {
		e, err := wire.RecvExec(s)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("the agent sent a bad frame: %v", err)
		}
		out = append(out, e)
	}
}

// frames encodes what the hub sends: the kind byte, then envelopes.
func frames(kind wire.StreamKind, es ...*wire.Envelope) []byte {
	var b bytes.Buffer
	b.WriteByte(byte(kind))
	s := wire.NewStream(&b, 0)
	for _, e := range es {
		s.Send(e)
	}
	return b.Bytes()
}

func start(cmd ...string) *wire.Envelope {
	return &wire.Envelope{Msg: &wire.Envelope_ExecStart{ExecStart: &wire.ExecStart{InstanceId: "i-1", Cmd: cmd, Stdin: true}}}
}

func stdin(b string, eof bool) *wire.Envelope {
	return &wire.Envelope{Msg: &wire.Envelope_ExecData{ExecData: &wire.ExecData{Stream: wire.ExecStdin, Data: []byte(b), Eof: eof}}}
}

// execDriver runs "cat" (stdin to stdout, then "bye" on stderr, exit 3)
// and "wait" (until ctx ends) in instance i-1 only.
type execDriver struct {
	driver.Driver
	cancelled chan struct{}
}

func (d *execDriver) Name() string { return "test" }

func (d *execDriver) ExecStream(ctx context.Context, id string, req driver.ExecRequest) (int, error) {
	if id != "i-1" {
		return -1, driver.ErrNotFound
	}
	switch req.Cmd[0] {
	case "cat":
		io.Copy(req.Stdout, req.Stdin)
		req.Stderr.Write([]byte("bye"))
		return 3, nil
	case "wait":
		<-ctx.Done()
		close(d.cancelled)
		return -1, ctx.Err()
	}
	return -1, errors.New("unknown command")
}

type plainDriver struct{ driver.Driver }

func (plainDriver) Name() string { return "plain" }

func TestServeStream(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	exit := func(code int32, msg string) *wire.Envelope {
		return &wire.Envelope{Msg: &wire.Envelope_ExecExit{ExecExit: &wire.ExecExit{Code: code, Error: msg}}}
	}
	started := &wire.Envelope{Msg: &wire.Envelope_ExecStarted{ExecStarted: &wire.ExecStarted{}}}
	data := func(s wire.ExecStream, b string) *wire.Envelope {
		return &wire.Envelope{Msg: &wire.Envelope_ExecData{ExecData: &wire.ExecData{Stream: s, Data: []byte(b)}}}
	}
	tests := []struct {
		name string
		drv  driver.Driver
		in   []byte
		want []*wire.Envelope
	}{
		{"a command with stdin", &execDriver{}, frames(wire.StreamExec, start("cat"), stdin("hello", false), stdin("", true)),
			[]*wire.Envelope{started, data(wire.ExecStdout, "hello"), data(wire.ExecStderr, "bye"), exit(3, "")}},
		{"no such instance", &execDriver{}, frames(wire.StreamExec, &wire.Envelope{Msg: &wire.Envelope_ExecStart{ExecStart: &wire.ExecStart{InstanceId: "i-2", Cmd: []string{"cat"}}}}),
			[]*wire.Envelope{started, exit(-1, "no instance i-2 on this host")}},
		{"a driver without exec", plainDriver{}, frames(wire.StreamExec, start("cat")),
			[]*wire.Envelope{exit(-1, "the plain driver on this host cannot run commands in instances")}},
		{"no driver", nil, frames(wire.StreamExec, start("cat")),
			[]*wire.Envelope{exit(-1, "no driver on this host cannot run commands in instances")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStream{in: bytes.NewReader(tt.in)}
			New(tt.drv, log).serveStream(context.Background(), st)
			got := st.sent(t)
			if len(got) != len(tt.want) {
				t.Fatalf("sent %v, want %v", got, tt.want)
			}
			for i := range got {
				if !proto.Equal(got[i], tt.want[i]) {
					t.Fatalf("message %d: %v, want %v", i, got[i], tt.want[i])
				}
			}
			if !st.closed || st.writeCode != nil {
				t.Fatalf("the stream was not ended cleanly: closed %v, reset %v", st.closed, st.writeCode)
			}
		})
	}
}

// TestBadFramesResetTheStream: whatever the hub sends that an exec stream
// does not carry resets it with CodeProtocol (and kills a running
// command); nothing panics.
func TestBadFramesResetTheStream(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name string
		in   []byte
	}{
		{"another stream kind", frames(wire.StreamLogs, start("cat"))},
		{"no kind", nil},
		{"not protobuf", append([]byte{byte(wire.StreamExec), 3}, 0xff, 0xff, 0xff)},
		{"not ExecStart first", frames(wire.StreamExec, stdin("x", false))},
		{"an empty command", frames(wire.StreamExec, start())},
		{"an oversized frame", append([]byte{byte(wire.StreamExec)}, 0xff, 0xff, 0xff, 0x7f)},
		{"a second ExecStart while running", frames(wire.StreamExec, start("wait"), start("wait"))},
		{"stdout from the hub while running", frames(wire.StreamExec, start("wait"), &wire.Envelope{Msg: &wire.Envelope_ExecData{ExecData: &wire.ExecData{Stream: wire.ExecStdout}}})},
		{"a heartbeat while running", frames(wire.StreamExec, start("wait"), &wire.Envelope{Msg: &wire.Envelope_Heartbeat{Heartbeat: &wire.Heartbeat{Seq: 1}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &execDriver{cancelled: make(chan struct{})}
			st := &fakeStream{in: bytes.NewReader(tt.in)}
			done := make(chan struct{})
			go func() { New(d, log).serveStream(context.Background(), st); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream was not reset")
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if st.writeCode == nil || wire.Code(*st.writeCode) == wire.CodeOK || st.readCode == nil {
				t.Fatalf("reset codes: read %v, write %v; want a protocol error", st.readCode, st.writeCode)
			}
			if c := wire.Code(*st.writeCode); c != wire.CodeProtocol && c != wire.CodeFrameTooLarge {
				t.Fatalf("reset with %d, want CodeProtocol", c)
			}
			for _, e := range sentOf(t, st.out.Bytes()) {
				if e.GetExecStarted() == nil {
					t.Fatalf("sent %v on a bad stream", e)
				}
			}
		})
	}
}
