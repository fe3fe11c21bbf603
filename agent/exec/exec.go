// Package exec is the agent's side of `wharf app exec`: it accepts the
// streams a hub node opens on the agent's connection (the agent has no
// inbound port, so the hub reaches it on the connection the agent made),
// and runs each exec stream's command through the driver.
//
// An exec stream: the hub writes wire.StreamExec and an ExecStart, then
// stdin (ExecData) and terminal sizes (ExecResize); the agent answers
// ExecStarted (or, refusing, ExecExit at once), then output (ExecData)
// and, last, ExecExit. A frame that is not one of these
// resets the stream with CodeProtocol; the command is then killed.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/agent/control"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Server runs the hub's exec streams on one host.
type Server struct {
	drv driver.Driver // nil: an agent without a driver
	log *slog.Logger
}

// New returns a Server running commands through drv.
func New(drv driver.Driver, log *slog.Logger) *Server {
	return &Server{drv: drv, log: log.With("component", "exec")}
}

// Register makes every session accept the hub's streams.
func (s *Server) Register(c *control.Control) {
	c.Send(func() control.Feed { return control.Feed{Conn: s.Serve} })
}

// Serve accepts the streams the hub opens on conn until ctx ends or the
// connection does.
func (s *Server) Serve(ctx context.Context, conn *quic.Conn) {
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		go s.serveStream(ctx, st)
	}
}

// Stream is what serveStream needs of a QUIC stream.
type Stream interface {
	io.ReadWriteCloser
	CancelRead(quic.StreamErrorCode)
	CancelWrite(quic.StreamErrorCode)
}

func (s *Server) serveStream(ctx context.Context, st Stream) {
	var kind [1]byte
	if _, err := io.ReadFull(st, kind[:]); err != nil || wire.StreamKind(kind[0]) != wire.StreamExec {
		reset(st, wire.CodeProtocol)
		return
	}
	ws := wire.NewStream(st, wire.ExecMaxFrame)
	env, err := wire.RecvExec(ws)
	if err != nil || env.GetExecStart() == nil {
		reset(st, wire.CodeProtocol)
		return
	}
	code, err := s.run(ctx, ws, st, env.GetExecStart())
	exit := &wire.ExecExit{Code: int32(code)}
	if err != nil {
		var perr protocolError
		if errors.As(err, &perr) {
			reset(st, wire.CodeOf(perr.err))
			return
		}
		exit = &wire.ExecExit{Code: -1, Error: err.Error()}
	}
	_ = ws.Send(&wire.Envelope{Msg: &wire.Envelope_ExecExit{ExecExit: exit}})
	st.Close()
	st.CancelRead(quic.StreamErrorCode(wire.CodeOK))
}

func reset(st Stream, code wire.Code) {
	st.CancelRead(quic.StreamErrorCode(code))
	st.CancelWrite(quic.StreamErrorCode(code))
}

// protocolError: the hub sent what an exec stream does not carry.
type protocolError struct{ err error }

func (e protocolError) Error() string { return e.err.Error() }

// run runs one exec and returns the command's exit code.
func (s *Server) run(ctx context.Context, ws *wire.Stream, st Stream, start *wire.ExecStart) (int, error) {
	ex, ok := s.drv.(driver.ExecStreamer)
	if !ok {
		name := "no"
		if s.drv != nil {
			name = "the " + s.drv.Name()
		}
		return -1, fmt.Errorf("%s driver on this host cannot run commands in instances", name)
	}
	if err := ws.Send(&wire.Envelope{Msg: &wire.Envelope_ExecStarted{ExecStarted: &wire.ExecStarted{}}}); err != nil {
		return -1, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resize := make(chan driver.TermSize, 1)
	req := driver.ExecRequest{Cmd: start.Cmd, TTY: start.Tty, Resize: resize,
		Size:   driver.TermSize{Cols: uint16(start.Cols), Rows: uint16(start.Rows)},
		Stdout: &output{s: ws, stream: wire.ExecStdout}, Stderr: &output{s: ws, stream: wire.ExecStderr}}
	var stdinW *io.PipeWriter
	if start.Stdin {
		var r *io.PipeReader
		r, stdinW = io.Pipe()
		req.Stdin = r
		defer r.Close()
	}
	go func() {
		err := readInput(ws, stdinW, resize)
		if stdinW != nil {
			stdinW.CloseWithError(err)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			cancel(err)
		}
	}()
	code, err := ex.ExecStream(ctx, start.InstanceId, req)
	if cause := context.Cause(ctx); err != nil && cause != nil && cause != context.Canceled {
		if c := wire.CodeOf(cause); c == wire.CodeProtocol || c == wire.CodeFrameTooLarge {
			return -1, protocolError{cause}
		}
	}
	if errors.Is(err, driver.ErrNotFound) {
		return -1, fmt.Errorf("no instance %s on this host", start.InstanceId)
	}
	return code, err
}

// readInput feeds the hub's stdin and sizes to the command until the hub
// ends its side (io.EOF) or sends what an exec stream does not carry.
func readInput(ws *wire.Stream, stdin *io.PipeWriter, resize chan driver.TermSize) error {
	for {
		env, err := wire.RecvExec(ws)
		if err != nil {
			return err
		}
		switch m := env.Msg.(type) {
		case *wire.Envelope_ExecData:
			d := m.ExecData
			if d.Stream != wire.ExecStdin || stdin == nil {
				return fmt.Errorf("%w: %s data from the hub", wire.ErrCorrupt, d.Stream)
			}
			if d.Eof {
				stdin.Close()
				continue
			}
			if _, err := stdin.Write(d.Data); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return err
			}
		case *wire.Envelope_ExecResize:
			sz := driver.TermSize{Cols: uint16(m.ExecResize.Cols), Rows: uint16(m.ExecResize.Rows)}
			select { // only the newest size matters
			case <-resize:
			default:
			}
			resize <- sz
		default:
			return fmt.Errorf("%w: %T from the hub after ExecStart", wire.ErrUnknownMessage, m)
		}
	}
}

// output sends what the command writes on one stream, in chunks of at
// most wire.ExecChunk.
type output struct {
	s      *wire.Stream
	stream wire.ExecStream
}

func (o *output) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := p[:min(len(p), wire.ExecChunk)]
		if err := o.s.Send(&wire.Envelope{Msg: &wire.Envelope_ExecData{ExecData: &wire.ExecData{Stream: o.stream, Data: c}}}); err != nil {
			return n, err
		}
		n += len(c)
		p = p[len(c):]
	}
	return n, nil
}
