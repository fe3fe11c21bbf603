package logship

import (
	"bytes"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/seglog"
)

func FuzzDecode(f *testing.F) {
	valid := appendRecord(nil, &Line{Instance: "i", Stream: "stdout", Seq: 7, Time: time.Unix(1, 2), Text: "hello", Partial: true})
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(bytes.Clone(valid), 0, 0, 0))
	f.Add(make([]byte, 16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		l, n, err := decodeRecord(data)
		if err != nil {
			return
		}
		if n < recHeaderLen || n > len(data) {
			t.Fatalf("record length %d of %d bytes", n, len(data))
		}
		if _, _, err := seglog.ReadFrame(data[:n], maxPayload); err != nil {
			t.Fatalf("decoded a record that is not a valid frame: %v", err)
		}
		// A decoded record re-encodes to exactly the bytes it came from.
		if re := appendRecord(nil, &l); !bytes.Equal(re, data[:n]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, data[:n])
		}
	})
}

func TestDecodeRejectsEveryBitFlip(t *testing.T) {
	valid := appendRecord(nil, &Line{Instance: "inst", Stream: "stderr", Seq: 1 << 33, Time: time.Unix(0, -5), Text: "some text"})
	l, n, err := decodeRecord(valid)
	if err != nil || n != len(valid) || l.Seq != 1<<33 || l.Text != "some text" || !l.Time.Equal(time.Unix(0, -5)) {
		t.Fatalf("decode valid: %+v %d %v", l, n, err)
	}
	for i := range len(valid) * 8 {
		bad := bytes.Clone(valid)
		bad[i/8] ^= 1 << (i % 8)
		if _, _, err := decodeRecord(bad); err == nil {
			t.Fatalf("bit %d flipped, still decoded", i)
		}
	}
	for i := range valid {
		if _, _, err := decodeRecord(valid[:i]); err == nil {
			t.Fatalf("prefix of %d bytes decoded", i)
		}
	}
}
