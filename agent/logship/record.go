package logship

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/wharf-platform/wharf/internal/seglog"
)

// On-disk encoding; see doc.go for the full description.
const (
	recHeaderLen = seglog.FrameHeaderLen
	segHeaderLen = int64(len(segMagic))

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

// lineFormat is the layout of this buffer's records: no positions, one
// flag (Partial).
var lineFormat = seglog.LineFormat{Flags: flagPartial, MaxName: maxNameBytes, MaxText: maxPayload, MaxPayload: maxPayload}

// appendRecord appends the framed encoding of l to dst.
func appendRecord(dst []byte, l *Line) []byte {
	var flags byte
	if l.Partial {
		flags |= flagPartial
	}
	return lineFormat.Append(dst, flags, 0, l.Seq, l.Time.UnixNano(), l.Instance, l.Stream, l.Text)
}

// recordLen returns the framed length announced by the header at the start
// of buf, or an error wrapping seglog.ErrShort or seglog.ErrCorrupt.
func recordLen(buf []byte) (int, error) { return seglog.FrameLen(buf, maxPayload) }

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

// sharedAt is a shared chunk and the offset in it of the buf decoded.
type sharedAt struct {
	*shared
	off int
}

// decodeRecordShared is decodeRecord taking Text as a substring of
// sh.str at buf's offset off (when sh is set) and names from sh.names.
func decodeRecordShared(buf []byte, sh *sharedAt) (Line, int, error) {
	var v seglog.Line
	n, err := lineFormat.Decode(buf, &v)
	if err != nil {
		return Line{}, 0, err
	}
	l := Line{Seq: v.Seq, Time: time.Unix(0, v.Time), Partial: v.Flags&flagPartial != 0}
	if sh == nil {
		l.Instance, l.Stream, l.Text = string(v.Instance), string(v.Stream), string(v.Text)
		return l, n, nil
	}
	l.Instance, l.Stream = sh.intern(v.Instance), sh.intern(v.Stream)
	at := sh.off + recHeaderLen + v.TextOff
	l.Text = sh.str[at : at+len(v.Text)]
	return l, n, nil
}

// intern returns b as a string, the same string for the same name.
func (sh *shared) intern(b []byte) string {
	s, ok := sh.names[string(b)]
	if !ok {
		s = string(b)
		if len(sh.names) < 1024 {
			sh.names[s] = s
		}
	}
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
// (name, acked, dropHigh, drop count, drop first, drop last, last times),
// sealed with a CRC32C.
func encodeState(st map[string]persisted) []byte {
	names := make([]string, 0, len(st))
	for n := range st {
		names = append(names, n)
	}
	slices.Sort(names)
	buf := append([]byte(nil), stateMagic...)
	buf = appendUvarints(buf, uint64(len(names)))
	for _, n := range names {
		p := st[n]
		buf = seglog.AppendString(buf, n)
		buf = appendUvarints(buf, p.acked, p.dropHigh, p.drop.Count, p.drop.First, p.drop.Last)
		streams := make([]string, 0, len(p.last))
		for st := range p.last {
			streams = append(streams, st)
		}
		slices.Sort(streams)
		buf = appendUvarints(buf, uint64(len(streams)))
		for _, st := range streams {
			buf = seglog.AppendString(buf, st)
			buf = binary.AppendVarint(buf, p.last[st])
		}
	}
	return seglog.Seal(buf)
}

func decodeState(buf []byte) (map[string]persisted, error) {
	magic, body, err := seglog.Unseal(buf, stateMagic, stateV1)
	if err != nil {
		return nil, err
	}
	d := seglog.NewDecoder(body)
	n := d.Uvarint()
	if n > uint64(d.Len()) {
		return nil, fmt.Errorf("%w: state count %d", seglog.ErrCorrupt, n)
	}
	st := make(map[string]persisted, n)
	for range n {
		name := d.String(maxNameBytes)
		var p persisted
		p.acked, p.dropHigh = d.Uvarint(), d.Uvarint()
		p.drop.Count, p.drop.First, p.drop.Last = d.Uvarint(), d.Uvarint(), d.Uvarint()
		if magic != stateV1 {
			k := d.Uvarint()
			if k > uint64(d.Len()) {
				return nil, fmt.Errorf("%w: state stream count %d", seglog.ErrCorrupt, k)
			}
			for range k {
				st := d.String(maxNameBytes)
				ns := d.Varint()
				if d.Err() != nil {
					return nil, d.Err()
				}
				if p.last == nil {
					p.last = map[string]int64{}
				}
				p.last[st] = ns
			}
		}
		if d.Err() != nil {
			return nil, d.Err()
		}
		st[name] = p
	}
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return st, nil
}

func appendUvarints(dst []byte, vs ...uint64) []byte {
	for _, v := range vs {
		dst = binary.AppendUvarint(dst, v)
	}
	return dst
}
