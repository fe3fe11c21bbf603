package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// execAnswerTimeout bounds the wait for an agent's first answer on an
// exec stream.
const execAnswerTimeout = 15 * time.Second

// ErrNotConnected: the host's agent has no connection to this node.
var ErrNotConnected = errors.New("the host's agent is not connected to this hub node")

// ExecError is an agent's refusal to run a command (no such instance, a
// driver without exec), in its words.
type ExecError struct{ Message string }

func (e *ExecError) Error() string { return e.Message }

// ExecRequest is a command to run in an instance on a host whose agent is
// connected here. Nil Stdin: none; nil Stdout or Stderr: discarded.
type ExecRequest struct {
	Instance string
	Cmd      []string
	TTY      bool
	Size     apitypes.TermSize
	Resize   <-chan apitypes.TermSize
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
}

// execConns holds the agents' control connections to this node, on
// which exec streams are opened.
type execConns struct {
	mu    sync.Mutex
	conns map[string]*quic.Conn // host id -> its control connection here
	wait  time.Duration         // zero: execAnswerTimeout (tests shorten it)
}

// trackConn records conn as host's connection to this node until the
// returned func runs.
func (g *Gateway) trackConn(hostID string, conn *quic.Conn) func() {
	e := &g.execs
	e.mu.Lock()
	if e.conns == nil {
		e.conns = map[string]*quic.Conn{}
	}
	e.conns[hostID] = conn
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		if e.conns[hostID] == conn {
			delete(e.conns, hostID)
		}
		e.mu.Unlock()
	}
}

func (g *Gateway) connOf(hostID string) *quic.Conn {
	g.execs.mu.Lock()
	defer g.execs.mu.Unlock()
	return g.execs.conns[hostID]
}

// Connected reports whether host's agent is connected to this node.
func (g *Gateway) Connected(hostID string) bool { return g.connOf(hostID) != nil }

// Exec runs req on host's agent, over a stream this node opens on the
// agent's connection, and returns the command's exit code. ErrNotConnected
// when the agent is connected elsewhere; an *ExecError when the agent
// refused.
func (g *Gateway) Exec(ctx context.Context, hostID string, req ExecRequest) (int, error) {
	conn := g.connOf(hostID)
	if conn == nil {
		return -1, ErrNotConnected
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return -1, fmt.Errorf("open an exec stream to host %s: %w", hostID, err)
	}
	// Ending ctx (the client went away) resets the stream both ways: the
	// agent then kills the command.
	stop := context.AfterFunc(ctx, func() {
		st.CancelRead(quic.StreamErrorCode(wire.CodeShutdown))
		st.CancelWrite(quic.StreamErrorCode(wire.CodeShutdown))
	})
	defer stop()
	defer st.CancelRead(quic.StreamErrorCode(wire.CodeOK))
	if _, err := st.Write([]byte{byte(wire.StreamExec)}); err != nil {
		return -1, err
	}
	s := wire.NewStream(st, wire.ExecMaxFrame)
	start := &wire.ExecStart{InstanceId: req.Instance, Cmd: req.Cmd, Tty: req.TTY, Stdin: req.Stdin != nil,
		Cols: uint32(req.Size.Cols), Rows: uint32(req.Size.Rows)}
	if err := s.Send(&wire.Envelope{Msg: &wire.Envelope_ExecStart{ExecStart: start}}); err != nil {
		return -1, err
	}
	done := make(chan struct{})
	defer close(done)
	go sendInput(s, st, req, done)
	// The agent answers at once (ExecStarted), however long its command
	// stays quiet: one that does not is older than exec, or cut off.
	wait := g.execs.wait
	if wait == 0 {
		wait = execAnswerTimeout
	}
	st.SetReadDeadline(time.Now().Add(wait))
	for {
		env, err := wire.RecvExec(s)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return -1, fmt.Errorf("the agent of host %s did not take the exec within %s (is it older than this hub?)", hostID, wait)
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("the agent ended the exec without an exit code")
			} else if c := wire.CodeOf(err); c == wire.CodeProtocol || c == wire.CodeFrameTooLarge {
				st.CancelWrite(quic.StreamErrorCode(c))
			}
			return -1, fmt.Errorf("exec on host %s: %w", hostID, err)
		}
		switch m := env.Msg.(type) {
		case *wire.Envelope_ExecStarted:
			st.SetReadDeadline(time.Time{})
		case *wire.Envelope_ExecData:
			w := req.Stdout
			if m.ExecData.Stream == wire.ExecStderr {
				w = req.Stderr
			}
			if w != nil && len(m.ExecData.Data) > 0 {
				if _, err := w.Write(m.ExecData.Data); err != nil {
					return -1, err
				}
			}
		case *wire.Envelope_ExecExit:
			if m.ExecExit.Error != "" {
				return -1, &ExecError{Message: m.ExecExit.Error}
			}
			return int(m.ExecExit.Code), nil
		default:
			st.CancelWrite(quic.StreamErrorCode(wire.CodeProtocol))
			return -1, fmt.Errorf("exec on host %s: %w: %T from the agent", hostID, wire.ErrUnknownMessage, m)
		}
	}
}

// sendInput forwards stdin and resizes to the agent until done, then ends
// the stream's write side.
func sendInput(s *wire.Stream, st *quic.Stream, req ExecRequest, done <-chan struct{}) {
	defer st.Close()
	input := make(chan []byte)
	if req.Stdin != nil {
		go func() {
			defer close(input)
			for {
				buf := make([]byte, wire.ExecChunk)
				n, err := req.Stdin.Read(buf)
				if n > 0 {
					select {
					case input <- buf[:n]:
					case <-done:
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	in := (<-chan []byte)(input)
	if req.Stdin == nil {
		in = nil
	}
	for {
		var env *wire.Envelope
		select {
		case <-done:
			return
		case b, ok := <-in:
			if !ok {
				in = nil
				env = &wire.Envelope{Msg: &wire.Envelope_ExecData{ExecData: &wire.ExecData{Stream: wire.ExecStdin, Eof: true}}}
			} else {
				env = &wire.Envelope{Msg: &wire.Envelope_ExecData{ExecData: &wire.ExecData{Stream: wire.ExecStdin, Data: b}}}
			}
		case sz, ok := <-req.Resize:
			if !ok {
				req.Resize = nil
				continue
			}
			env = &wire.Envelope{Msg: &wire.Envelope_ExecResize{ExecResize: &wire.ExecResize{Cols: uint32(sz.Cols), Rows: uint32(sz.Rows)}}}
		}
		if err := s.Send(env); err != nil {
			return
		}
	}
}
