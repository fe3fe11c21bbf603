package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"
)

// execMessages holds one envelope of each exec message.
func execMessages() []*Envelope {
	return []*Envelope{
		{Msg: &Envelope_ExecStart{ExecStart: &ExecStart{InstanceId: "i1", Cmd: []string{"sh", "-c", "exit 7"}, Tty: true, Stdin: true, Cols: 80, Rows: 24}}},
		{Msg: &Envelope_ExecData{ExecData: &ExecData{Stream: ExecStdin, Data: []byte("ls\n")}}},
		{Msg: &Envelope_ExecData{ExecData: &ExecData{Stream: ExecStdin, Eof: true}}},
		{Msg: &Envelope_ExecData{ExecData: &ExecData{Stream: ExecStdout, Data: []byte("out \xff")}}},
		{Msg: &Envelope_ExecData{ExecData: &ExecData{Stream: ExecStderr, Data: []byte("err")}}},
		{Msg: &Envelope_ExecResize{ExecResize: &ExecResize{Cols: 132, Rows: 43}}},
		{Msg: &Envelope_ExecStarted{ExecStarted: &ExecStarted{}}},
		{Msg: &Envelope_ExecExit{ExecExit: &ExecExit{Code: 7}}},
		{Msg: &Envelope_ExecExit{ExecExit: &ExecExit{Code: -1, Error: "no such instance"}}},
	}
}

func TestExecMessagesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	s := NewStream(&buf, ExecMaxFrame)
	msgs := execMessages()
	for _, e := range msgs {
		if err := s.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range msgs {
		got, err := RecvExec(s)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("message %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := RecvExec(s); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestRecvExecRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   *Envelope
		want error
	}{
		{"another stream's message", every()[2], ErrUnknownMessage},
		{"start without a command", &Envelope{Msg: &Envelope_ExecStart{ExecStart: &ExecStart{InstanceId: "i1"}}}, ErrCorrupt},
		{"start with an empty program", &Envelope{Msg: &Envelope_ExecStart{ExecStart: &ExecStart{InstanceId: "i1", Cmd: []string{""}}}}, ErrCorrupt},
		{"start without an instance", &Envelope{Msg: &Envelope_ExecStart{ExecStart: &ExecStart{Cmd: []string{"ls"}}}}, ErrCorrupt},
		{"data of no stream", &Envelope{Msg: &Envelope_ExecData{ExecData: &ExecData{Data: []byte("x")}}}, ErrCorrupt},
		{"data of an unknown stream", &Envelope{Msg: &Envelope_ExecData{ExecData: &ExecData{Stream: 9}}}, ErrCorrupt},
		{"oversized data", &Envelope{Msg: &Envelope_ExecData{ExecData: &ExecData{Stream: ExecStdout, Data: make([]byte, ExecChunk+1)}}}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := NewStream(&buf, 0).Send(tt.in); err != nil {
				t.Fatal(err)
			}
			_, err := RecvExec(NewStream(&buf, ExecMaxFrame))
			if !errors.Is(err, tt.want) || CodeOf(err) != CodeProtocol {
				t.Fatalf("got %v (code %d), want %v (code %d)", err, CodeOf(err), tt.want, CodeProtocol)
			}
		})
	}
	big := &Envelope{Msg: &Envelope_ExecData{ExecData: &ExecData{Stream: ExecStdout, Data: make([]byte, ExecMaxFrame)}}}
	var buf bytes.Buffer
	NewStream(&buf, 0).Send(big)
	if _, err := RecvExec(NewStream(&buf, ExecMaxFrame)); CodeOf(err) != CodeFrameTooLarge {
		t.Fatalf("a frame over ExecMaxFrame: %v, want CodeFrameTooLarge", err)
	}
}

func FuzzRecvExec(f *testing.F) {
	for _, e := range execMessages() {
		b, _ := proto.Marshal(e)
		f.Add(frame(b))
	}
	f.Add([]byte{0x03, 0x8a, 0x03, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewStream(bytes.NewBuffer(b), ExecMaxFrame)
		for i := 0; i < 64; i++ {
			e, err := RecvExec(s)
			if err != nil {
				if CodeOf(err) == CodeOK {
					t.Fatal("an error mapped to CodeOK")
				}
				return
			}
			if d := e.GetExecData(); d != nil && len(d.Data) > ExecChunk {
				t.Fatalf("RecvExec passed %d bytes of data", len(d.Data))
			}
			if st := e.GetExecStart(); st != nil && (len(st.Cmd) == 0 || st.InstanceId == "") {
				t.Fatal("RecvExec passed an ExecStart without a command")
			}
		}
	})
}
