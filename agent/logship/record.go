package logship

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"
)

// On-disk encoding; see doc.go for the full description.
const (
	recHeaderLen = 8 // uint32 LE payload length + uint32 LE CRC32C
	segHeaderLen = int64(len(segMagic))

	kindLine    byte = 1
	flagPartial byte = 1

	// maxPayload bounds a record's payload independently of the current
	// Config, so a smaller MaxLineBytes after a restart never makes old
	// records look corrupt.
	maxPayload = 1 << 24
	// maxNameBytes bounds instance and stream names.
	maxNameBytes = 1024
	// maxLineBytesLimit bounds Config.MaxLineBytes.
	maxLineBytesLimit = 1 << 20
)

const (
	segMagic   = "WLOGSEG1"
	stateMagic = "WLOGSTA2"
	stateV1    = "WLOGSTA1" // without last times; still read
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShort means the bytes end before the record does: a torn tail
	// when found at the end of a segment.
	errShort = errors.New("short record")
	// errCorrupt means the bytes are not a valid record.
	errCorrupt = errors.New("corrupt record")
)

// recordCRC is the CRC32C of the 4 length bytes followed by the payload.
func recordCRC(lenBytes, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(lenBytes, castagnoli), castagnoli, payload)
}

// appendRecord appends the framed encoding of l to dst.
func appendRecord(dst []byte, l *Line) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var flags byte
	if l.Partial {
		flags |= flagPartial
	}
	dst = append(dst, kindLine, flags)
	dst = binary.AppendUvarint(dst, l.Seq)
	dst = binary.AppendVarint(dst, l.Time.UnixNano())
	dst = appendString(dst, l.Instance)
	dst = appendString(dst, l.Stream)
	dst = appendString(dst, l.Text)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-recHeaderLen))
	binary.LittleEndian.PutUint32(dst[start+4:], recordCRC(dst[start:start+4], dst[start+recHeaderLen:]))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// recordLen returns the framed length announced by the header at the start
// of buf, or errShort/errCorrupt.
func recordLen(buf []byte) (int, error) {
	if len(buf) < recHeaderLen {
		return 0, errShort
	}
	plen := binary.LittleEndian.Uint32(buf)
	if plen < 2 || plen > maxPayload {
		return 0, fmt.Errorf("%w: payload length %d", errCorrupt, plen)
	}
	return recHeaderLen + int(plen), nil
}

// decodeRecord decodes the record at the start of buf and returns it with
// its framed length. It never panics; a nil error guarantees the CRC matched
// and the payload was consumed exactly.
func decodeRecord(buf []byte) (Line, int, error) {
	return decodeRecordShared(buf, nil)
}

// shared lets decodeRecordShared take strings without copying them: str
// holds the same bytes as the buf given (a whole read chunk, converted
// once), names the instance and stream names seen.
type shared struct {
	str   string
	names map[string]string
}

// decodeRecordShared is decodeRecord taking Text as a substring of
// sh.str at buf's offset off (when sh is set) and names from sh.names.
func decodeRecordShared(buf []byte, sh *sharedAt) (Line, int, error) {
	n, err := recordLen(buf)
	if err != nil {
		return Line{}, 0, err
	}
	if len(buf) < n {
		return Line{}, 0, errShort
	}
	payload := buf[recHeaderLen:n]
	if got, want := recordCRC(buf[:4], payload), binary.LittleEndian.Uint32(buf[4:]); got != want {
		return Line{}, 0, fmt.Errorf("%w: crc %08x, want %08x", errCorrupt, got, want)
	}
	var d decoder
	if sh != nil {
		d.sh, d.off = sh.shared, sh.off+recHeaderLen
	}
	l, err := d.payload(payload)
	if err != nil {
		return Line{}, 0, err
	}
	return l, n, nil
}

// sharedAt is a shared chunk and the offset in it of the buf decoded.
type sharedAt struct {
	*shared
	off int
}

func decodePayload(p []byte) (Line, error) {
	var d decoder
	return d.payload(p)
}

func (d *decoder) payload(p []byte) (Line, error) {
	d.buf, d.start = p, len(p)
	var l Line
	if kind := d.byte(); kind != kindLine {
		return Line{}, fmt.Errorf("%w: kind %d", errCorrupt, kind)
	}
	flags := d.byte()
	if flags&^flagPartial != 0 {
		return Line{}, fmt.Errorf("%w: flags %#x", errCorrupt, flags)
	}
	l.Partial = flags&flagPartial != 0
	l.Seq = d.uvarint()
	l.Time = time.Unix(0, d.varint())
	l.Instance = d.name()
	l.Stream = d.name()
	l.Text = d.string(maxPayload)
	if d.err != nil {
		return Line{}, d.err
	}
	if len(d.buf) != 0 {
		return Line{}, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.buf))
	}
	if l.Seq == 0 || l.Instance == "" {
		return Line{}, fmt.Errorf("%w: zero seq or empty instance", errCorrupt)
	}
	return l, nil
}

// decoder reads from buf; the first failure sticks in err. With sh set,
// strings are taken from sh.str, where buf's first byte is at off.
type decoder struct {
	buf   []byte
	err   error
	sh    *shared
	off   int // offset in sh.str of the payload's start
	start int // the payload's length
}

// name is string(maxNameBytes), interned in sh.names.
func (d *decoder) name() string {
	if d.sh == nil {
		return d.string(maxNameBytes)
	}
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxNameBytes || n > uint64(len(d.buf)) {
		d.fail("string length")
		return ""
	}
	b := d.buf[:n]
	s, ok := d.sh.names[string(b)]
	if !ok {
		s = string(b)
		if len(d.sh.names) < 1024 {
			d.sh.names[s] = s
		}
	}
	d.buf = d.buf[n:]
	return s
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errCorrupt, what)
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) string(limit int) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(limit) || n > uint64(len(d.buf)) {
		d.fail("string length")
		return ""
	}
	var s string
	if d.sh != nil {
		at := d.off + d.start - len(d.buf)
		s = d.sh.str[at : at+int(n)]
	} else {
		s = string(d.buf[:n])
	}
	d.buf = d.buf[n:]
	return s
}

// persisted is the per-instance part of the state file.
type persisted struct {
	acked    uint64 // every seq <= acked was acknowledged by the hub
	dropHigh uint64 // highest seq ever dropped unacked (guards seq reuse)
	drop     DropInfo
	last     map[string]int64 // stream → newest line time stored (Unix ns)
}

// encodeState encodes the state file: magic, uvarint count, per instance
// (name, acked, dropHigh, drop count, drop first, drop last), CRC32C of all
// preceding bytes as uint32 LE.
func encodeState(st map[string]persisted) []byte {
	names := make([]string, 0, len(st))
	for n := range st {
		names = append(names, n)
	}
	slices.Sort(names)
	buf := append([]byte(nil), stateMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(names)))
	for _, n := range names {
		p := st[n]
		buf = appendString(buf, n)
		for _, v := range []uint64{p.acked, p.dropHigh, p.drop.Count, p.drop.First, p.drop.Last} {
			buf = binary.AppendUvarint(buf, v)
		}
		streams := make([]string, 0, len(p.last))
		for st := range p.last {
			streams = append(streams, st)
		}
		slices.Sort(streams)
		buf = binary.AppendUvarint(buf, uint64(len(streams)))
		for _, st := range streams {
			buf = appendString(buf, st)
			buf = binary.AppendVarint(buf, p.last[st])
		}
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

func decodeState(buf []byte) (map[string]persisted, error) {
	if len(buf) < len(stateMagic)+4 || (string(buf[:len(stateMagic)]) != stateMagic && string(buf[:len(stateV1)]) != stateV1) {
		return nil, fmt.Errorf("%w: bad state header", errCorrupt)
	}
	v1 := string(buf[:len(stateV1)]) == stateV1
	body, sum := buf[:len(buf)-4], binary.LittleEndian.Uint32(buf[len(buf)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: state crc mismatch", errCorrupt)
	}
	d := decoder{buf: body[len(stateMagic):]}
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		return nil, fmt.Errorf("%w: state count %d", errCorrupt, n)
	}
	st := make(map[string]persisted, n)
	for range n {
		name := d.string(maxNameBytes)
		var p persisted
		p.acked, p.dropHigh = d.uvarint(), d.uvarint()
		p.drop.Count, p.drop.First, p.drop.Last = d.uvarint(), d.uvarint(), d.uvarint()
		if !v1 {
			k := d.uvarint()
			if k > uint64(len(d.buf)) {
				return nil, fmt.Errorf("%w: state stream count %d", errCorrupt, k)
			}
			for range k {
				st := d.string(maxNameBytes)
				ns := d.varint()
				if d.err != nil {
					return nil, d.err
				}
				if p.last == nil {
					p.last = map[string]int64{}
				}
				p.last[st] = ns
			}
		}
		if d.err != nil {
			return nil, d.err
		}
		st[name] = p
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: state has trailing bytes", errCorrupt)
	}
	return st, nil
}
