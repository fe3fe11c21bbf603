package seglog

import (
	"encoding/binary"
	"fmt"
)

// KindLine is the kind byte of a line record, the only kind so far.
const KindLine byte = 1

// LineFormat is the layout of one log's line records: the payload is
//
//	byte     kind = KindLine
//	byte     flags (only the bits in Flags may be set)
//	uvarint  pos (> 0; only when Pos is set)
//	uvarint  seq (> 0)
//	varint   time, Unix nanoseconds
//	uvarint  len, instance bytes (1 .. MaxName)
//	uvarint  len, stream bytes (0 .. MaxName)
//	uvarint  len, text bytes (0 .. MaxText)
//
// consumed exactly.
type LineFormat struct {
	Flags      byte // the flag bits a record may carry
	Pos        bool // records carry a position after the flags
	MaxName    int  // bound of instance and stream names
	MaxText    int  // bound of the text
	MaxPayload int  // bound of a frame's payload (at least what the fields need)
}

// Line is a decoded line record. Instance, Stream and Text alias the
// buffer decoded from; TextOff is Text's offset in the payload.
type Line struct {
	Flags    byte
	Pos      uint64 // zero when the format has no positions
	Seq      uint64
	Time     int64 // Unix nanoseconds
	Instance []byte
	Stream   []byte
	Text     []byte
	TextOff  int
}

// Append appends the framed encoding of a line record to dst; pos is
// ignored when the format has no positions.
func (f *LineFormat) Append(dst []byte, flags byte, pos, seq uint64, t int64, instance, stream, text string) []byte {
	dst, start := BeginFrame(dst)
	dst = append(dst, KindLine, flags)
	if f.Pos {
		dst = binary.AppendUvarint(dst, pos)
	}
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendVarint(dst, t)
	dst = AppendString(dst, instance)
	dst = AppendString(dst, stream)
	dst = AppendString(dst, text)
	return EndFrame(dst, start)
}

// Size is the length Append adds, computed without encoding.
func (f *LineFormat) Size(pos, seq uint64, t int64, instance, stream, text string) int {
	n := FrameHeaderLen + 2 + UvarintLen(seq) + VarintLen(t) +
		UvarintLen(uint64(len(instance))) + len(instance) +
		UvarintLen(uint64(len(stream))) + len(stream) +
		UvarintLen(uint64(len(text))) + len(text)
	if f.Pos {
		n += UvarintLen(pos)
	}
	return n
}

// Decode decodes the line record at the start of buf into l and returns
// its framed length. It never panics; a nil error guarantees the CRC
// matched and the payload was consumed exactly and is valid.
func (f *LineFormat) Decode(buf []byte, l *Line) (int, error) {
	payload, n, err := ReadFrame(buf, f.MaxPayload)
	if err != nil {
		return 0, err
	}
	if err := f.DecodePayload(payload, l); err != nil {
		return 0, err
	}
	return n, nil
}

// DecodePayload decodes a line record's payload (a frame's content).
func (f *LineFormat) DecodePayload(p []byte, l *Line) error {
	d := NewDecoder(p)
	if kind := d.Byte(); kind != KindLine {
		return fmt.Errorf("%w: kind %d", ErrCorrupt, kind)
	}
	l.Flags = d.Byte()
	if l.Flags&^f.Flags != 0 {
		return fmt.Errorf("%w: flags %#x", ErrCorrupt, l.Flags)
	}
	l.Pos = 0
	if f.Pos {
		l.Pos = d.Uvarint()
	}
	l.Seq = d.Uvarint()
	l.Time = d.Varint()
	l.Instance = d.Bytes(f.MaxName)
	l.Stream = d.Bytes(f.MaxName)
	l.Text = d.Bytes(f.MaxText)
	l.TextOff = d.Off() - len(l.Text)
	if err := d.Done(); err != nil {
		return err
	}
	if l.Seq == 0 || len(l.Instance) == 0 || (f.Pos && l.Pos == 0) {
		return fmt.Errorf("%w: zero seq or pos, or empty instance", ErrCorrupt)
	}
	return nil
}
