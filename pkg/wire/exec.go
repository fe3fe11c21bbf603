package wire

import "fmt"

// Exec streams are the one kind the hub opens on an agent's connection
// (hosts have no inbound port): the hub writes StreamExec and an
// ExecStart, then stdin and resizes; the agent answers ExecStarted (or,
// refusing, ExecExit), then output and, last, ExecExit. Their frames are small so that one busy exec never holds
// a connection's flow-control window for long.
const (
	// ExecMaxFrame bounds an exec stream's frames.
	ExecMaxFrame = 64 << 10
	// ExecChunk bounds the data of one ExecData.
	ExecChunk = 32 << 10
)

// Exec stream names.
const (
	ExecStdin  = ExecStream_EXEC_STREAM_STDIN
	ExecStdout = ExecStream_EXEC_STREAM_STDOUT
	ExecStderr = ExecStream_EXEC_STREAM_STDERR
)

// RecvExec reads one message of an exec stream (s made with ExecMaxFrame)
// and checks it: an ExecStart names an instance and a command, an
// ExecData a known stream with at most ExecChunk bytes. Anything else is
// ErrUnknownMessage or ErrCorrupt (CodeProtocol): the reader closes the
// stream.
func RecvExec(s *Stream) (*Envelope, error) {
	e, err := s.Recv()
	if err != nil {
		return nil, err
	}
	if err := checkExec(e); err != nil {
		return nil, err
	}
	return e, nil
}

func checkExec(e *Envelope) error {
	switch m := e.Msg.(type) {
	case *Envelope_ExecStart:
		if m.ExecStart.InstanceId == "" || len(m.ExecStart.Cmd) == 0 || m.ExecStart.Cmd[0] == "" {
			return fmt.Errorf("%w: ExecStart without an instance or a command", ErrCorrupt)
		}
	case *Envelope_ExecData:
		d := m.ExecData
		switch d.Stream {
		case ExecStdin, ExecStdout, ExecStderr:
		default:
			return fmt.Errorf("%w: ExecData of stream %d", ErrCorrupt, d.Stream)
		}
		if len(d.Data) > ExecChunk {
			return fmt.Errorf("%w: ExecData of %d bytes, limit %d", ErrCorrupt, len(d.Data), ExecChunk)
		}
	case *Envelope_ExecResize, *Envelope_ExecExit, *Envelope_ExecStarted:
	default:
		return fmt.Errorf("%w: %T on an exec stream", ErrUnknownMessage, m)
	}
	return nil
}
