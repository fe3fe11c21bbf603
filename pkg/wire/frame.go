// Package wire is the agent <-> hub protocol: protobuf messages (wire.proto,
// generated code committed; `make proto` regenerates it), length-delimited
// frames with a maximum size, stream kinds and error codes.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/proto"
)

// ALPN protocol of the agent gateway.
const ALPN = "wharf-agent/1"

// StreamKind is the first byte of every QUIC stream an agent opens.
type StreamKind uint8

// Stream kinds. Logs and metrics have their own streams so that a burst of
// them never delays a heartbeat on the control stream.
const (
	StreamControl StreamKind = iota + 1
	StreamEnroll
	StreamLogs
	StreamMetrics
	StreamRenew // an enrolled agent asks for a new certificate
	StreamExec  // the hub runs a command in an instance (the one kind the hub opens)
)

// Code is a QUIC application error code for closing a stream or connection.
type Code uint64

// Error codes.
const (
	CodeOK            Code = 0
	CodeProtocol      Code = 1 // unknown message, corrupt frame, unexpected message
	CodeFrameTooLarge Code = 2
	CodeUnauthorized  Code = 3 // bad token, revoked host, wrong certificate
	CodeVersion       Code = 4 // unsupported protocol version (what protocol 1 hubs say; later ones say which side is too old)
	CodeShutdown      Code = 5 // the peer is going away
	CodeInternal      Code = 6
	CodeUnavailable   Code = 7 // the hub node cannot answer yet (no leader, replica behind): retry
	CodeAgentTooOld   Code = 8 // the agent speaks only protocols older than the hub's: upgrade the agent
	CodeHubTooOld     Code = 9 // the hub speaks only protocols older than the agent's: upgrade the hub (retry meanwhile)
)

// DefaultMaxFrame bounds a frame's body.
const DefaultMaxFrame = 4 << 20

// Frame errors.
var (
	ErrFrameTooLarge  = errors.New("frame too large")
	ErrCorrupt        = errors.New("corrupt frame")
	ErrUnknownMessage = errors.New("unknown message type")
)

// WriteFrame writes m as one frame: uvarint length, then its bytes.
func WriteFrame(w io.Writer, m proto.Message) error {
	buf, err := EncodeFrame(m)
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// EncodeFrame returns m as one frame, for a message sent unchanged to
// many peers (Stream.SendFrame): encoded once, not once per peer.
func EncodeFrame(m proto.Message) ([]byte, error) {
	body, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", m, err)
	}
	buf := make([]byte, binary.MaxVarintLen64, binary.MaxVarintLen64+len(body))
	n := binary.PutUvarint(buf, uint64(len(body)))
	return append(buf[:n], body...), nil
}

// ReadFrame reads one frame into m. A frame over maxSize fails with
// ErrFrameTooLarge before its body is read or allocated; a truncated frame
// with io.ErrUnexpectedEOF; bytes that are not m's encoding with ErrCorrupt.
// A clean end of stream before a frame is io.EOF.
func ReadFrame(r *bufio.Reader, maxSize int, m proto.Message) error {
	size, err := readUvarint(r)
	if err != nil {
		return err
	}
	if size > uint64(maxSize) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, maxSize)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// Stream sends and receives Envelopes on one byte stream. Send is safe for
// concurrent use; Recv is for one reader.
type Stream struct {
	r       *bufio.Reader
	maxSize int

	mu sync.Mutex
	w  io.Writer
}

// streamReadBuffer is a Stream's read buffer: a heartbeat, an ack or a
// status report fits whole; a larger frame is read past it (ReadFrame
// reads a body with io.ReadFull, whatever the buffer's size). A hub node
// holds one per stream of every agent, so bufio's default 4 KB would be
// ~4 KB per agent.
const streamReadBuffer = 512

// NewStream wraps rw; maxSize 0 means DefaultMaxFrame.
func NewStream(rw io.ReadWriter, maxSize int) *Stream {
	if maxSize == 0 {
		maxSize = DefaultMaxFrame
	}
	return &Stream{r: bufio.NewReaderSize(rw, streamReadBuffer), w: rw, maxSize: maxSize}
}

// Send writes one envelope.
func (s *Stream) Send(e *Envelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return WriteFrame(s.w, e)
}

// SendFrame writes a frame of an envelope made by EncodeFrame.
func (s *Stream) SendFrame(frame []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(frame)
	return err
}

// Recv reads one envelope. An envelope without a known message (from a
// newer peer, or garbage that happens to parse) is ErrUnknownMessage: the
// caller closes the stream with CodeProtocol.
func (s *Stream) Recv() (*Envelope, error) {
	e := &Envelope{}
	if err := ReadFrame(s.r, s.maxSize, e); err != nil {
		return nil, err
	}
	if e.Msg == nil {
		return nil, ErrUnknownMessage
	}
	return e, nil
}

// CodeOf maps a frame error to the code to close the stream with.
func CodeOf(err error) Code {
	switch {
	case err == nil:
		return CodeOK
	case errors.Is(err, ErrFrameTooLarge):
		return CodeFrameTooLarge
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrUnknownMessage), errors.Is(err, io.ErrUnexpectedEOF):
		return CodeProtocol
	}
	return CodeInternal
}

// readUvarint reads a length prefix. Unlike binary.ReadUvarint it tells an
// overlong prefix (ErrCorrupt) from the transport's own errors (a reset
// stream, a closed connection), which it returns as they are.
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, fmt.Errorf("%w: bad length prefix", ErrCorrupt)
}
