package seglog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func TestDecoderFields(t *testing.T) {
	buf := []byte{7}
	buf = binary.AppendUvarint(buf, 1<<40)
	buf = binary.AppendVarint(buf, -5)
	buf = AppendString(buf, "name")
	d := NewDecoder(buf)
	if b, u, v, s := d.Byte(), d.Uvarint(), d.Varint(), d.String(10); b != 7 || u != 1<<40 || v != -5 || s != "name" {
		t.Fatalf("decoded %d %d %d %q", b, u, v, s)
	}
	if err := d.Done(); err != nil || d.Off() != len(buf) {
		t.Fatalf("done: %v at %d", err, d.Off())
	}
	for _, v := range []uint64{0, 1, 127, 128, math.MaxUint64} {
		if UvarintLen(v) != len(binary.AppendUvarint(nil, v)) {
			t.Errorf("UvarintLen(%d)", v)
		}
	}
	for _, v := range []int64{0, -1, 63, -64, 64, math.MinInt64, math.MaxInt64} {
		if VarintLen(v) != len(binary.AppendVarint(nil, v)) {
			t.Errorf("VarintLen(%d)", v)
		}
	}
}

func TestDecoderRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		buf  []byte
		read func(d *Decoder)
	}{
		{"uvarint not shortest", []byte{0x81, 0x00}, func(d *Decoder) { d.Uvarint() }},
		{"varint not shortest", []byte{0x80, 0x00}, func(d *Decoder) { d.Varint() }},
		{"uvarint cut", []byte{0x80}, func(d *Decoder) { d.Uvarint() }},
		{"empty byte", nil, func(d *Decoder) { d.Byte() }},
		{"string over limit", AppendString(nil, "toolong"), func(d *Decoder) { d.String(3) }},
		{"string past the end", []byte{5, 'a'}, func(d *Decoder) { d.Bytes(10) }},
		{"trailing bytes", []byte{1, 2}, func(d *Decoder) { d.Byte() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(tt.buf)
			tt.read(&d)
			if err := d.Done(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			// The failure sticks.
			if d.Byte() != 0 || d.Uvarint() != 0 || d.Err() == nil {
				t.Fatal("reads after a failure returned data")
			}
		})
	}
}

func TestLineFormatRoundTrip(t *testing.T) {
	for _, f := range []LineFormat{
		{Flags: 1, MaxName: 16, MaxText: 64, MaxPayload: 128},
		{Flags: 3, Pos: true, MaxName: 16, MaxText: 64, MaxPayload: 128},
	} {
		enc := f.Append([]byte("x"), 2&f.Flags|1, 99, 1<<33, -7, "inst", "stderr", "some text")[1:]
		if len(enc) != f.Size(99, 1<<33, -7, "inst", "stderr", "some text") {
			t.Fatalf("pos %v: size %d, encoded %d", f.Pos, f.Size(99, 1<<33, -7, "inst", "stderr", "some text"), len(enc))
		}
		var l Line
		n, err := f.Decode(enc, &l)
		if err != nil || n != len(enc) {
			t.Fatalf("pos %v: decode %d %v", f.Pos, n, err)
		}
		wantPos := uint64(0)
		if f.Pos {
			wantPos = 99
		}
		if l.Flags != 2&f.Flags|1 || l.Pos != wantPos || l.Seq != 1<<33 || l.Time != -7 || string(l.Instance) != "inst" ||
			string(l.Stream) != "stderr" || string(l.Text) != "some text" || string(enc[FrameHeaderLen+l.TextOff:][:len(l.Text)]) != "some text" {
			t.Fatalf("pos %v: decoded %+v", f.Pos, l)
		}
	}
}

func TestLineFormatRejects(t *testing.T) {
	f := LineFormat{Flags: 1, Pos: true, MaxName: 4, MaxText: 8, MaxPayload: 64}
	for _, tt := range []struct {
		name string
		enc  []byte
	}{
		{"unknown flag", f.Append(nil, 2, 1, 1, 0, "i", "s", "t")},
		{"zero seq", f.Append(nil, 0, 1, 0, 0, "i", "s", "t")},
		{"zero pos", f.Append(nil, 0, 0, 1, 0, "i", "s", "t")},
		{"empty instance", f.Append(nil, 0, 1, 1, 0, "", "s", "t")},
		{"long name", f.Append(nil, 0, 1, 1, 0, "instance", "s", "t")},
		{"long text", f.Append(nil, 0, 1, 1, 0, "i", "s", "text too long")},
		{"other kind", func() []byte {
			dst, start := BeginFrame(nil)
			dst = append(dst, 2, 0, 1, 1, 0, 1, 'i', 0, 0)
			return EndFrame(dst, start)
		}()},
	} {
		var l Line
		if _, err := f.Decode(tt.enc, &l); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
}

// testFormats are the two layouts the logs use: the agent's (no
// positions, one flag, large payloads) and the hub's.
var testFormats = []LineFormat{
	{Flags: 1, MaxName: 1024, MaxText: 1 << 24, MaxPayload: 1 << 24},
	{Flags: 3, Pos: true, MaxName: 253, MaxText: 1 << 20, MaxPayload: 1<<20 + 4<<10},
}

func TestLineRejectsEveryBitFlip(t *testing.T) {
	for _, f := range testFormats {
		valid := f.Append(nil, 1, 77, 1<<33, -5, "inst", "stderr", "some text")
		var l Line
		if n, err := f.Decode(valid, &l); err != nil || n != len(valid) || l.Seq != 1<<33 || string(l.Text) != "some text" || l.Time != -5 {
			t.Fatalf("pos %v: decode valid: %+v %d %v", f.Pos, l, n, err)
		}
		for i := range len(valid) * 8 {
			bad := bytes.Clone(valid)
			bad[i/8] ^= 1 << (i % 8)
			if _, err := f.Decode(bad, &l); err == nil {
				t.Fatalf("pos %v: bit %d flipped, still decoded", f.Pos, i)
			}
		}
		for i := range valid {
			if _, err := f.Decode(valid[:i], &l); err == nil {
				t.Fatalf("pos %v: prefix of %d bytes decoded", f.Pos, i)
			}
		}
	}
}

// FuzzLineDecode: the line decoder of either log's format never panics,
// what it accepts is a valid frame that re-encodes to the bytes it came
// from, and its size is what Size says.
func FuzzLineDecode(f *testing.F) {
	for i, lf := range testFormats {
		valid := lf.Append(nil, 1, 42, 7, 1_000_000_002, "i", "stdout", "hello")
		f.Add(i == 1, valid)
		f.Add(i == 1, valid[:len(valid)-1])
		f.Add(i == 1, append(bytes.Clone(valid), 0, 0, 0))
	}
	f.Add(false, make([]byte, 16))
	f.Add(true, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, hub bool, data []byte) {
		lf := testFormats[0]
		if hub {
			lf = testFormats[1]
		}
		var l Line
		n, err := lf.Decode(data, &l)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error wraps neither ErrShort nor ErrCorrupt: %v", err)
			}
			return
		}
		if n < FrameHeaderLen || n > len(data) {
			t.Fatalf("record length %d of %d bytes", n, len(data))
		}
		if _, _, err := ReadFrame(data[:n], lf.MaxPayload); err != nil {
			t.Fatalf("decoded a record that is not a valid frame: %v", err)
		}
		re := lf.Append(nil, l.Flags, l.Pos, l.Seq, l.Time, string(l.Instance), string(l.Stream), string(l.Text))
		if !bytes.Equal(re, data[:n]) || lf.Size(l.Pos, l.Seq, l.Time, string(l.Instance), string(l.Stream), string(l.Text)) != n {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, data[:n])
		}
	})
}
