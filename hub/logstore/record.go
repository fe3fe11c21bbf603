package logstore

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/wharf-platform/wharf/internal/seglog"
)

// On-disk encoding; see doc.go for the full description.
const (
	recHeaderLen = seglog.FrameHeaderLen

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

// lineFormat is the layout of the store's records: with positions, and
// the Partial and Primary flags. Tenant and App are not in records: the
// segment header holds them.
var lineFormat = seglog.LineFormat{
	Flags: flagPartial | flagPrimary, Pos: true,
	MaxName: MaxNameBytes, MaxText: MaxLineBytes, MaxPayload: maxPayload,
}

// recordSize is len(appendRecord(nil, r, pos)), computed without encoding.
func recordSize(r *Record, pos uint64) int {
	return lineFormat.Size(pos, r.Seq, r.Time.UnixNano(), r.Instance, r.Stream, r.Line)
}

// appendRecord appends the framed encoding of r, stored at pos, to dst.
func appendRecord(dst []byte, r *Record, pos uint64) []byte {
	var flags byte
	if r.Partial {
		flags |= flagPartial
	}
	if r.Primary {
		flags |= flagPrimary
	}
	return lineFormat.Append(dst, flags, pos, r.Seq, r.Time.UnixNano(), r.Instance, r.Stream, r.Line)
}

// view is a decoded record whose byte fields alias the buffer it was
// decoded from; queries filter views and copy only what they return.
type view = seglog.Line

// toRecord copies v into a Record of the given tenant and app.
func toRecord(v *view, tenant, app string) Record {
	return Record{
		Time:     time.Unix(0, v.Time),
		Tenant:   tenant,
		App:      app,
		Instance: string(v.Instance),
		Stream:   string(v.Stream),
		Seq:      v.Seq,
		Line:     string(v.Text),
		Partial:  v.Flags&flagPartial != 0,
		Primary:  v.Flags&flagPrimary != 0,
		Pos:      v.Pos,
	}
}

// decodeRecord decodes the record at the start of buf and returns it with
// its framed length; Tenant and App are left empty. It never panics; a nil
// error guarantees the CRC matched and the payload was consumed exactly.
func decodeRecord(buf []byte) (Record, int, error) {
	var v view
	n, err := lineFormat.Decode(buf, &v)
	if err != nil {
		return Record{}, 0, err
	}
	return toRecord(&v, "", ""), n, nil
}

// Segment header: magic, tenant, app, CRC32C of the preceding bytes.

// maxHeaderLen bounds an encoded segment header.
const maxHeaderLen = len(segMagic) + 2*(2+MaxNameBytes) + 4

func encodeHeader(tenant, app string) []byte {
	buf := append(make([]byte, 0, maxHeaderLen), segMagic...)
	buf = seglog.AppendString(buf, tenant)
	buf = seglog.AppendString(buf, app)
	return seglog.Seal(buf)
}

// decodeHeader decodes the segment header at the start of buf and returns
// the names and the header's length.
func decodeHeader(buf []byte) (tenant, app string, n int, err error) {
	if len(buf) < len(segMagic) || string(buf[:len(segMagic)]) != segMagic {
		return "", "", 0, fmt.Errorf("%w: bad segment magic", seglog.ErrCorrupt)
	}
	d := seglog.NewDecoder(buf[len(segMagic):])
	tenant = d.String(MaxNameBytes)
	app = d.String(MaxNameBytes)
	if d.Err() != nil || d.Len() < 4 {
		return "", "", 0, fmt.Errorf("%w: bad segment header", seglog.ErrCorrupt)
	}
	n = len(segMagic) + d.Off() + 4
	if _, _, err := seglog.Unseal(buf[:n], segMagic); err != nil {
		return "", "", 0, fmt.Errorf("segment header: %w", err)
	}
	if checkName("tenant", tenant) != nil || checkName("app", app) != nil {
		return "", "", 0, fmt.Errorf("%w: bad names in segment header", seglog.ErrCorrupt)
	}
	return tenant, app, n, nil
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
		buf = seglog.AppendString(buf, name)
		buf = binary.AppendUvarint(buf, seq)
	}
	return seglog.Seal(buf)
}

func decodeIndex(buf []byte) (*segIndex, error) {
	_, body, err := seglog.Unseal(buf, idxMagic)
	if err != nil {
		return nil, err
	}
	d := seglog.NewDecoder(body)
	x := &segIndex{
		size:    int64(d.Uvarint() & (1<<62 - 1)),
		hdrLen:  int64(d.Uvarint() & (1<<62 - 1)),
		records: int64(d.Uvarint() & (1<<62 - 1)),
	}
	nb := d.Uvarint()
	if err := d.Err(); err != nil {
		return nil, err
	}
	if nb > uint64(d.Len()) || (nb == 0) != (x.records == 0) {
		return nil, fmt.Errorf("%w: index block count %d", seglog.ErrCorrupt, nb)
	}
	x.blocks = make([]block, 0, nb)
	prev := x.hdrLen - 1
	for range nb {
		b := block{off: int64(d.Uvarint() & (1<<62 - 1)), minT: d.Varint(), maxT: d.Varint(), maxPos: d.Uvarint()}
		if err := d.Err(); err != nil {
			return nil, err
		}
		if b.off <= prev || b.off >= x.size || b.minT > b.maxT || b.maxPos == 0 {
			return nil, fmt.Errorf("%w: index block %+v", seglog.ErrCorrupt, b)
		}
		if len(x.blocks) == 0 && b.off != x.hdrLen {
			return nil, fmt.Errorf("%w: first block at %d, header is %d bytes", seglog.ErrCorrupt, b.off, x.hdrLen)
		}
		prev = b.off
		x.blocks = append(x.blocks, b)
	}
	ni := d.Uvarint()
	if ni > uint64(d.Len()) {
		return nil, fmt.Errorf("%w: index instance count %d", seglog.ErrCorrupt, ni)
	}
	x.inst = make(map[string]uint64, ni)
	for range ni {
		name := d.String(MaxNameBytes)
		seq := d.Uvarint()
		if err := d.Err(); err != nil {
			return nil, err
		}
		if name == "" || seq == 0 {
			return nil, fmt.Errorf("%w: index instance %q seq %d", seglog.ErrCorrupt, name, seq)
		}
		x.inst[name] = seq
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%w: index has trailing bytes", seglog.ErrCorrupt)
	}
	return x, nil
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
		buf = seglog.AppendString(buf, e.key.tenant)
		buf = seglog.AppendString(buf, e.key.app)
		buf = seglog.AppendString(buf, e.key.instance)
		buf = binary.AppendUvarint(buf, e.maxSeq)
		buf = binary.AppendVarint(buf, e.lastActive)
	}
	return seglog.Seal(buf)
}

func decodeState(buf []byte) (*stateFile, error) {
	_, body, err := seglog.Unseal(buf, stateMagic)
	if err != nil {
		return nil, err
	}
	d := seglog.NewDecoder(body)
	st := &stateFile{lastPos: d.Uvarint()}
	n := d.Uvarint()
	if err := d.Err(); err != nil {
		return nil, err
	}
	if n > uint64(d.Len()) {
		return nil, fmt.Errorf("%w: state count %d", seglog.ErrCorrupt, n)
	}
	st.insts = make([]instState, 0, n)
	for range n {
		var e instState
		e.key.tenant = d.String(MaxNameBytes)
		e.key.app = d.String(MaxNameBytes)
		e.key.instance = d.String(MaxNameBytes)
		e.maxSeq = d.Uvarint()
		e.lastActive = d.Varint()
		if err := d.Err(); err != nil {
			return nil, err
		}
		st.insts = append(st.insts, e)
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%w: state has trailing bytes", seglog.ErrCorrupt)
	}
	return st, nil
}
