package wire

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// every holds one envelope of each message type.
func every() []*Envelope {
	return []*Envelope{
		{Msg: &Envelope_Hello{Hello: &Hello{ProtocolVersion: ProtocolMax, ProtocolMin: ProtocolMin, HostId: "h1", AgentVersion: "dev", LastAssignmentVersion: 7}}},
		{Msg: &Envelope_Welcome{Welcome: &Welcome{ProtocolVersion: ProtocolMax, HubNode: "hub1", HubAddrs: []string{"10.0.0.1:7481"}, HeartbeatIntervalMs: 1000, LeaseMs: 10000, GossipKey: []byte("k"), PoolPeers: []string{"10.0.0.2:7484"}, UsageHourSeconds: 3600}}},
		{Msg: &Envelope_Heartbeat{Heartbeat: &Heartbeat{Seq: 3, SentUnixMs: 1700000000000, AppliedAssignmentVersion: 7}}},
		{Msg: &Envelope_HeartbeatAck{HeartbeatAck: &HeartbeatAck{Seq: 3, QuorumBacked: true, LeaseMs: 10000, PoolPeers: []string{"10.0.0.2:7484"}}}},
		{Msg: &Envelope_Inventory{Inventory: &Inventory{Hostname: "n1", Os: "linux", Arch: "amd64", Cpus: 2, MemoryBytes: 24 << 30, Drivers: []string{"docker", "exec"}, Labels: map[string]string{"ssd": "yes"}}}},
		{Msg: &Envelope_Assignments{Assignments: &Assignments{Version: 9, Instances: []*Instance{{Id: "i1", App: "web", Tenant: "acme", Version: 2, Image: "web:2", Env: map[string]string{"A": "b"}, Ports: []*Port{{ContainerPort: 8080, Protocol: "tcp"}}, Health: &Health{Http: "/h", Port: 8080}, Desired: DesiredRun, Failover: FailoverFenced, MaxDisconnectMs: 1500}}}}},
		{Msg: &Envelope_AssignmentAck{AssignmentAck: &AssignmentAck{Version: 9}}},
		{Msg: &Envelope_GossipReport{GossipReport: &GossipReport{Peers: []*PeerView{{HostId: "h2", State: "dead", Incarnation: 4}}}}},
		{Msg: &Envelope_HubNodes{HubNodes: &HubNodes{Addrs: []string{"a:1", "b:2"}}}},
		{Msg: &Envelope_Error{Error: &Error{Code: uint32(CodeUnauthorized), Message: "join token expired"}}},
		{Msg: &Envelope_EnrollRequest{EnrollRequest: &EnrollRequest{JoinTokenId: "ab", JoinTokenSecret: "s", CsrDer: []byte{1, 2}, Name: "n1", Pool: "p"}}},
		{Msg: &Envelope_EnrollResponse{EnrollResponse: &EnrollResponse{CertPem: []byte("c"), CaPem: []byte("ca"), HostId: "h1"}}},
		{Msg: &Envelope_RenewRequest{RenewRequest: &RenewRequest{CsrDer: []byte{3}}}},
		{Msg: &Envelope_RenewResponse{RenewResponse: &RenewResponse{CertPem: []byte("c2")}}},
		{Msg: &Envelope_StatusReport{StatusReport: &StatusReport{Instances: []*InstanceStatus{{Id: "i1", StateCode: InstanceRunning, Ready: true, Address: "10.0.0.1:32768", Restarts: 2}}}}},
		{Msg: &Envelope_LogBatch{LogBatch: &LogBatch{Id: 4, Sources: []string{"acme/web/i1"}, Lines: []*LogLine{{Source: 0, Stream: "stdout", Seq: 9, UnixNano: 1700000000000000001, Text: []byte("hi \xff"), Partial: true}}, Drops: []*LogDrop{{Source: 0, Count: 3, First: 2, Last: 4}}}}},
		{Msg: &Envelope_LogAck{LogAck: &LogAck{Id: 4, Error: "no replica"}}},
		{Msg: &Envelope_UsageReport{UsageReport: &UsageReport{Seq: 12, Counts: []*UsageCount{{App: "acme/web", HourUnix: 1700000000 - 1700000000%3600, Requests: 40, EgressBytes: 4096}}}}},
		{Msg: &Envelope_UsageAck{UsageAck: &UsageAck{Seq: 12}}},
		{Msg: &Envelope_RateSignal{RateSignal: &RateSignal{Apps: []*AppRate{{App: "acme/web", Unix: 1700000000, Requests: 41, ElapsedMs: 380, SignalRps: 40}}}}},
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	var buf bytes.Buffer
	s := NewStream(&buf, 0)
	msgs := every()
	for _, e := range msgs {
		if err := s.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range msgs {
		got, err := s.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("message %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func frame(body []byte) []byte {
	return append(protowire.AppendVarint(nil, uint64(len(body))), body...)
}

func TestBadFrames(t *testing.T) {
	good, _ := proto.Marshal(every()[0])
	unknown := protowire.AppendTag(nil, 999, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, []byte("from the future"))
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
		code Code
	}{
		{"too large", protowire.AppendVarint(nil, 1<<30), 0, ErrFrameTooLarge, CodeFrameTooLarge},
		{"over a small limit", frame(good), 4, ErrFrameTooLarge, CodeFrameTooLarge},
		{"truncated body", frame(good)[:5], 0, io.ErrUnexpectedEOF, CodeProtocol},
		{"truncated length", []byte{0x80}, 0, io.ErrUnexpectedEOF, CodeProtocol},
		{"overlong length", bytes.Repeat([]byte{0xff}, 11), 0, ErrCorrupt, CodeProtocol},
		{"not protobuf", frame([]byte{0xff, 0xff, 0xff}), 0, ErrCorrupt, CodeProtocol},
		{"unknown message", frame(unknown), 0, ErrUnknownMessage, CodeProtocol},
		{"empty envelope", frame(nil), 0, ErrUnknownMessage, CodeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewStream(bytes.NewBuffer(tt.in), tt.max).Recv()
			if !errors.Is(err, tt.want) || CodeOf(err) != tt.code {
				t.Fatalf("got %v (code %d), want %v (code %d)", err, CodeOf(err), tt.want, tt.code)
			}
		})
	}
}

// syncBuf is a bytes.Buffer safe for concurrent writers, to check that
// concurrent Sends never interleave frames.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) Read(p []byte) (int, error)  { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Read(p) }

func TestConcurrentSendsKeepFramesWhole(t *testing.T) {
	var b syncBuf
	s := NewStream(&b, 0)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				s.Send(&Envelope{Msg: &Envelope_Heartbeat{Heartbeat: &Heartbeat{Seq: uint64(g*1000 + i)}}})
			}
		}(g)
	}
	wg.Wait()
	r := NewStream(&b, 0)
	for i := 0; i < 800; i++ {
		if _, err := r.Recv(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, e := range every() {
		b, _ := proto.Marshal(e)
		f.Add(frame(b))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewStream(bytes.NewBuffer(b), 1<<16)
		for i := 0; i < 64; i++ {
			e, err := s.Recv()
			if err != nil {
				if CodeOf(err) == CodeOK {
					t.Fatal("an error mapped to CodeOK")
				}
				return
			}
			if e.Msg == nil {
				t.Fatal("Recv returned an envelope without a message")
			}
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, e := range every() {
		b, _ := proto.Marshal(e)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		if proto.Unmarshal(b, &e) != nil {
			return
		}
		again, err := proto.Marshal(&e)
		if err != nil {
			t.Fatalf("a decoded envelope does not encode: %v", err)
		}
		var e2 Envelope
		if err := proto.Unmarshal(again, &e2); err != nil || !proto.Equal(&e, &e2) {
			t.Fatalf("re-decode differs: %v", err)
		}
	})
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestTransportErrorsPassThrough: a reset stream is not a corrupt frame.
func TestTransportErrorsPassThrough(t *testing.T) {
	boom := errors.New("stream reset by peer")
	_, err := NewStream(struct {
		io.Reader
		io.Writer
	}{failingReader{boom}, io.Discard}, 0).Recv()
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want the transport's error unchanged", err)
	}
}

// chunked reads at most n bytes a call, as a stream hands over what has
// arrived.
type chunked struct {
	r io.Reader
	n int
}

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestStreamReadsFramesPastItsBuffer: frames much larger than a Stream's
// read buffer, between small ones, arrive whole, however the bytes come.
func TestStreamReadsFramesPastItsBuffer(t *testing.T) {
	var wire bytes.Buffer
	var sent []*Envelope
	for _, size := range []int{10, 100 << 10, streamReadBuffer - 3, streamReadBuffer + 1, 20, 3 * streamReadBuffer} {
		e := &Envelope{Msg: &Envelope_Error{Error: &Error{Code: uint32(CodeInternal), Message: string(bytes.Repeat([]byte{'x'}, size))}}}
		if err := WriteFrame(&wire, e); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
	}
	s := NewStream(struct {
		io.Reader
		io.Writer
	}{chunked{&wire, 333}, io.Discard}, 0)
	for i, want := range sent {
		got, err := s.Recv()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes of message, want %d", i, len(got.GetError().GetMessage()), len(want.GetError().Message))
		}
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}
