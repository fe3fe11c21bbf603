package seglog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func frame(payload string) []byte {
	dst, start := BeginFrame([]byte("prefix"))
	dst = append(dst, payload...)
	return EndFrame(dst, start)[start:]
}

func TestFrameRoundTripAndBitFlips(t *testing.T) {
	valid := frame("some payload")
	p, n, err := ReadFrame(valid, 100)
	if err != nil || n != len(valid) || string(p) != "some payload" {
		t.Fatalf("read: %q %d %v", p, n, err)
	}
	if _, _, err := ReadFrame(append(bytes.Clone(valid), "next"...), 100); err != nil {
		t.Fatalf("trailing bytes after a frame: %v", err)
	}
	for i := range len(valid) * 8 {
		bad := bytes.Clone(valid)
		bad[i/8] ^= 1 << (i % 8)
		if _, _, err := ReadFrame(bad, 100); err == nil {
			t.Fatalf("bit %d flipped, still read", i)
		}
	}
	for i := range valid {
		_, _, err := ReadFrame(valid[:i], 100)
		if !errors.Is(err, ErrShort) {
			t.Fatalf("prefix of %d bytes: %v, want ErrShort", i, err)
		}
	}
}

func TestFrameLenBounds(t *testing.T) {
	for _, tt := range []struct {
		plen uint32
		ok   bool
	}{{0, false}, {1, true}, {100, true}, {101, false}, {1 << 31, false}} {
		buf := binary.LittleEndian.AppendUint32(nil, tt.plen)
		buf = append(buf, 0, 0, 0, 0)
		n, err := FrameLen(buf, 100)
		if tt.ok != (err == nil) || (tt.ok && n != int(tt.plen)+FrameHeaderLen) {
			t.Errorf("payload length %d: %d %v", tt.plen, n, err)
		}
		if !tt.ok && !errors.Is(err, ErrCorrupt) {
			t.Errorf("payload length %d: %v does not wrap ErrCorrupt", tt.plen, err)
		}
	}
}

// FuzzReadFrame: the frame decoder never panics, and what it accepts is a
// frame whose payload re-frames to the same bytes.
func FuzzReadFrame(f *testing.F) {
	valid := frame("hello")
	f.Add(valid, 64)
	f.Add(valid[:len(valid)-1], 64)
	f.Add(append(bytes.Clone(valid), 0, 0, 0), 3)
	f.Add(make([]byte, 16), 64)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, 1<<30)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		p, n, err := ReadFrame(data, max)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error wraps neither ErrShort nor ErrCorrupt: %v", err)
			}
			return
		}
		if n < FrameHeaderLen+1 || n > len(data) || len(p) != n-FrameHeaderLen || len(p) > max {
			t.Fatalf("frame of %d bytes (payload %d, max %d) in %d bytes", n, len(p), max, len(data))
		}
		if re := frame(string(p)); !bytes.Equal(re, data[:n]) {
			t.Fatalf("re-framing differs:\n%x\n%x", re, data[:n])
		}
	})
}
