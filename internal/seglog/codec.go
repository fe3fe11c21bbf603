package seglog

import (
	"encoding/binary"
	"fmt"
)

// AppendString appends s as a uvarint length and its bytes.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// UvarintLen is len(binary.AppendUvarint(nil, v)).
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// VarintLen is len(binary.AppendVarint(nil, v)).
func VarintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return UvarintLen(u)
}

// Decoder reads fields from a buffer. The first failure sticks: later
// reads return zero values, and Err reports it (wrapping ErrCorrupt).
// Varints must have their shortest encoding, so decoded bytes re-encode
// to themselves.
type Decoder struct {
	buf  []byte
	size int // len of the buffer given to Reset
	err  error
}

// NewDecoder returns a decoder reading buf.
func NewDecoder(buf []byte) Decoder { return Decoder{buf: buf, size: len(buf)} }

// Err returns the first failure, or nil.
func (d *Decoder) Err() error { return d.err }

// Len returns how many bytes are left.
func (d *Decoder) Len() int { return len(d.buf) }

// Off returns how many bytes were read: the offset of the next field in
// the buffer given to NewDecoder.
func (d *Decoder) Off() int { return d.size - len(d.buf) }

// Done returns Err, or fails (and returns that) if bytes are left over.
func (d *Decoder) Done() error {
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.buf))
		d.buf = nil
	}
	return d.err
}

// Fail records a failure (if none is recorded yet) and stops decoding.
func (d *Decoder) Fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.buf = nil
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.buf) < 1 {
		d.Fail("byte")
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

// Uvarint reads a uvarint in its shortest encoding.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || n != UvarintLen(v) {
		d.Fail("uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Varint reads a varint in its shortest encoding.
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 || n != VarintLen(v) {
		d.Fail("varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Bytes reads a uvarint length of at most limit and that many bytes. The
// result aliases the buffer.
func (d *Decoder) Bytes(limit int) []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.buf)) {
		d.Fail("length")
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

// String is Bytes copied into a string.
func (d *Decoder) String(limit int) string { return string(d.Bytes(limit)) }
