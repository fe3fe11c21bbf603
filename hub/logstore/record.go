package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// On-disk encoding; see doc.go for the full description.
const (
	recHeaderLen = 8 // uint32 LE payload length + uint32 LE CRC32C

	kindLine    byte = 1
	flagPartial byte = 1
	flagPrimary byte = 2

	// MaxLineBytes bounds Record.Line.
	MaxLineBytes = 1 << 20
	// MaxNameBytes bounds Record.Tenant, App, Instance and Stream.
	MaxNameBytes = 253

	// maxPayload bounds a record's payload: the largest line, three names
	// and the varints, rounded up.
	maxPayload = MaxLineBytes + 4<<10
)

const (
	segMagic   = "WHLOGSG1"
	idxMagic   = "WHLOGIX1"
	stateMagic = "WHLOGST1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShort means the bytes end before the record does: a torn tail
	// when found at the end of a segment.
	errShort = errors.New("short record")
	// errCorrupt means the bytes are not a valid record (or index, state,
	// header).
	errCorrupt = errors.New("corrupt record")
)

// recordCRC is the CRC32C of the 4 length bytes followed by the payload.
func recordCRC(lenBytes, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(lenBytes, castagnoli), castagnoli, payload)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

// recordSize is len(appendRecord(nil, r, pos)), computed without encoding.
func recordSize(r *Record, pos uint64) int {
	return recHeaderLen + 2 +
		uvarintLen(pos) + uvarintLen(r.Seq) + varintLen(r.Time.UnixNano()) +
		uvarintLen(uint64(len(r.Instance))) + len(r.Instance) +
		uvarintLen(uint64(len(r.Stream))) + len(r.Stream) +
		uvarintLen(uint64(len(r.Line))) + len(r.Line)
}

// appendRecord appends the framed encoding of r, stored at pos, to dst.
// Tenant and App are not encoded: the segment header holds them.
func appendRecord(dst []byte, r *Record, pos uint64) []byte {
	start := len(dst)
	var flags byte
	if r.Partial {
		flags |= flagPartial
	}
	if r.Primary {
		flags |= flagPrimary
	}
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindLine, flags)
	dst = binary.AppendUvarint(dst, pos)
	dst = binary.AppendUvarint(dst, r.Seq)
	dst = binary.AppendVarint(dst, r.Time.UnixNano())
	dst = appendString(dst, r.Instance)
	dst = appendString(dst, r.Stream)
	dst = appendString(dst, r.Line)
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

// view is a decoded record whose byte fields alias the buffer it was
// decoded from; queries filter views and copy only what they return.
type view struct {
	partial  bool
	primary  bool
	pos, seq uint64
	t        int64 // Unix nanoseconds
	instance []byte
	stream   []byte
	line     []byte
}

// decodeView decodes the record at the start of buf and returns it with its
// framed length. It never panics; a nil error guarantees the CRC matched and
// the payload was consumed exactly.
func decodeView(buf []byte) (view, int, error) {
	n, err := recordLen(buf)
	if err != nil {
		return view{}, 0, err
	}
	if len(buf) < n {
		return view{}, 0, errShort
	}
	payload := buf[recHeaderLen:n]
	if got, want := recordCRC(buf[:4], payload), binary.LittleEndian.Uint32(buf[4:]); got != want {
		return view{}, 0, fmt.Errorf("%w: crc %08x, want %08x", errCorrupt, got, want)
	}
	v, err := decodePayload(payload)
	if err != nil {
		return view{}, 0, err
	}
	return v, n, nil
}

func decodePayload(p []byte) (view, error) {
	d := decoder{buf: p}
	var v view
	if kind := d.byte(); kind != kindLine {
		return view{}, fmt.Errorf("%w: kind %d", errCorrupt, kind)
	}
	flags := d.byte()
	if flags&^(flagPartial|flagPrimary) != 0 {
		return view{}, fmt.Errorf("%w: flags %#x", errCorrupt, flags)
	}
	v.partial = flags&flagPartial != 0
	v.primary = flags&flagPrimary != 0
	v.pos = d.uvarint()
	v.seq = d.uvarint()
	v.t = d.varint()
	v.instance = d.bytes(MaxNameBytes)
	v.stream = d.bytes(MaxNameBytes)
	v.line = d.bytes(MaxLineBytes)
	if d.err != nil {
		return view{}, d.err
	}
	if len(d.buf) != 0 {
		return view{}, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.buf))
	}
	if v.pos == 0 || v.seq == 0 || len(v.instance) == 0 {
		return view{}, fmt.Errorf("%w: zero pos, zero seq or empty instance", errCorrupt)
	}
	return v, nil
}

// record copies v into a Record of the given tenant and app.
func (v *view) record(tenant, app string) Record {
	return Record{
		Time:     time.Unix(0, v.t),
		Tenant:   tenant,
		App:      app,
		Instance: string(v.instance),
		Stream:   string(v.stream),
		Seq:      v.seq,
		Line:     string(v.line),
		Partial:  v.partial,
		Primary:  v.primary,
		Pos:      v.pos,
	}
}

// decodeRecord decodes the record at the start of buf (see decodeView);
// Tenant and App are left empty.
func decodeRecord(buf []byte) (Record, int, error) {
	v, n, err := decodeView(buf)
	if err != nil {
		return Record{}, 0, err
	}
	return v.record("", ""), n, nil
}

// decoder reads from buf; the first failure sticks in err.
type decoder struct {
	buf []byte
	err error
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

// uvarint and varint accept only the shortest encoding, so every value
// has exactly one encoding and decoded bytes re-encode to themselves.
func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || n != uvarintLen(v) {
		d.fail("uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 || n != varintLen(v) {
		d.fail("varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.buf)) {
		d.fail("length")
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) string(limit int) string { return string(d.bytes(limit)) }

// Segment header: magic, tenant, app, CRC32C of the preceding bytes.

// maxHeaderLen bounds an encoded segment header.
const maxHeaderLen = len(segMagic) + 2*(2+MaxNameBytes) + 4

func encodeHeader(tenant, app string) []byte {
	buf := append(make([]byte, 0, maxHeaderLen), segMagic...)
	buf = appendString(buf, tenant)
	buf = appendString(buf, app)
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// decodeHeader decodes the segment header at the start of buf and returns
// the names and the header's length.
func decodeHeader(buf []byte) (tenant, app string, n int, err error) {
	if len(buf) < len(segMagic) || string(buf[:len(segMagic)]) != segMagic {
		return "", "", 0, fmt.Errorf("%w: bad segment magic", errCorrupt)
	}
	d := decoder{buf: buf[len(segMagic):]}
	tenant = d.string(MaxNameBytes)
	app = d.string(MaxNameBytes)
	if d.err != nil || len(d.buf) < 4 {
		return "", "", 0, fmt.Errorf("%w: bad segment header", errCorrupt)
	}
	n = len(buf) - len(d.buf)
	if crc32.Checksum(buf[:n], castagnoli) != binary.LittleEndian.Uint32(d.buf) {
		return "", "", 0, fmt.Errorf("%w: segment header crc mismatch", errCorrupt)
	}
	if checkName("tenant", tenant) != nil || checkName("app", app) != nil {
		return "", "", 0, fmt.Errorf("%w: bad names in segment header", errCorrupt)
	}
	return tenant, app, n + 4, nil
}

// segIndex is the in-memory summary of a segment, also stored in its .idx
// file once the segment is sealed or the store closed.
type segIndex struct {
	size    int64 // file size the summary describes
	hdrLen  int64
	records int64
	blocks  []block
	inst    map[string]uint64 // instance -> highest seq in the segment
}

func encodeIndex(x *segIndex) []byte {
	buf := append([]byte(nil), idxMagic...)
	buf = binary.AppendUvarint(buf, uint64(x.size))
	buf = binary.AppendUvarint(buf, uint64(x.hdrLen))
	buf = binary.AppendUvarint(buf, uint64(x.records))
	buf = binary.AppendUvarint(buf, uint64(len(x.blocks)))
	for _, b := range x.blocks {
		buf = binary.AppendUvarint(buf, uint64(b.off))
		buf = binary.AppendVarint(buf, b.minT)
		buf = binary.AppendVarint(buf, b.maxT)
		buf = binary.AppendUvarint(buf, b.maxPos)
	}
	buf = binary.AppendUvarint(buf, uint64(len(x.inst)))
	for name, seq := range x.inst {
		buf = appendString(buf, name)
		buf = binary.AppendUvarint(buf, seq)
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

func decodeIndex(buf []byte) (*segIndex, error) {
	body, err := checkedBody(buf, idxMagic)
	if err != nil {
		return nil, err
	}
	d := decoder{buf: body}
	x := &segIndex{
		size:    int64(d.uvarint() & (1<<62 - 1)),
		hdrLen:  int64(d.uvarint() & (1<<62 - 1)),
		records: int64(d.uvarint() & (1<<62 - 1)),
	}
	nb := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if nb > uint64(len(d.buf)) || (nb == 0) != (x.records == 0) {
		return nil, fmt.Errorf("%w: index block count %d", errCorrupt, nb)
	}
	x.blocks = make([]block, 0, nb)
	prev := x.hdrLen - 1
	for range nb {
		b := block{off: int64(d.uvarint() & (1<<62 - 1)), minT: d.varint(), maxT: d.varint(), maxPos: d.uvarint()}
		if d.err != nil {
			return nil, d.err
		}
		if b.off <= prev || b.off >= x.size || b.minT > b.maxT || b.maxPos == 0 {
			return nil, fmt.Errorf("%w: index block %+v", errCorrupt, b)
		}
		if len(x.blocks) == 0 && b.off != x.hdrLen {
			return nil, fmt.Errorf("%w: first block at %d, header is %d bytes", errCorrupt, b.off, x.hdrLen)
		}
		prev = b.off
		x.blocks = append(x.blocks, b)
	}
	ni := d.uvarint()
	if ni > uint64(len(d.buf)) {
		return nil, fmt.Errorf("%w: index instance count %d", errCorrupt, ni)
	}
	x.inst = make(map[string]uint64, ni)
	for range ni {
		name := d.string(MaxNameBytes)
		seq := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		if name == "" || seq == 0 {
			return nil, fmt.Errorf("%w: index instance %q seq %d", errCorrupt, name, seq)
		}
		x.inst[name] = seq
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: index has trailing bytes", errCorrupt)
	}
	return x, nil
}

// checkedBody verifies magic and trailing CRC32C of a whole-file encoding
// and returns the bytes between them.
func checkedBody(buf []byte, magic string) ([]byte, error) {
	if len(buf) < len(magic)+4 || string(buf[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad %s header", errCorrupt, magic)
	}
	body, sum := buf[:len(buf)-4], binary.LittleEndian.Uint32(buf[len(buf)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: %s crc mismatch", errCorrupt, magic)
	}
	return body[len(magic):], nil
}

// instKey identifies an instance for dedup. Instance names are expected to
// be unique across the platform; including tenant and app makes sure one
// tenant can never suppress another's lines by reusing a name.
type instKey struct{ tenant, app, instance string }

// instState is the dedup state of one instance.
type instState struct {
	key        instKey
	maxSeq     uint64 // highest seq ever stored
	lastActive int64  // Unix ns (Config.Now) of the last Append naming it
}

// stateFile is the content of the state file.
type stateFile struct {
	lastPos uint64
	insts   []instState
}

func encodeState(st *stateFile) []byte {
	buf := append([]byte(nil), stateMagic...)
	buf = binary.AppendUvarint(buf, st.lastPos)
	buf = binary.AppendUvarint(buf, uint64(len(st.insts)))
	for i := range st.insts {
		e := &st.insts[i]
		buf = appendString(buf, e.key.tenant)
		buf = appendString(buf, e.key.app)
		buf = appendString(buf, e.key.instance)
		buf = binary.AppendUvarint(buf, e.maxSeq)
		buf = binary.AppendVarint(buf, e.lastActive)
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

func decodeState(buf []byte) (*stateFile, error) {
	body, err := checkedBody(buf, stateMagic)
	if err != nil {
		return nil, err
	}
	d := decoder{buf: body}
	st := &stateFile{lastPos: d.uvarint()}
	n := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if n > uint64(len(d.buf)) {
		return nil, fmt.Errorf("%w: state count %d", errCorrupt, n)
	}
	st.insts = make([]instState, 0, n)
	for range n {
		var e instState
		e.key.tenant = d.string(MaxNameBytes)
		e.key.app = d.string(MaxNameBytes)
		e.key.instance = d.string(MaxNameBytes)
		e.maxSeq = d.uvarint()
		e.lastActive = d.varint()
		if d.err != nil {
			return nil, d.err
		}
		st.insts = append(st.insts, e)
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: state has trailing bytes", errCorrupt)
	}
	return st, nil
}
