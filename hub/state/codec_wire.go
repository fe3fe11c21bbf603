package state

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The binary form of a log entry is the protobuf wire format, written and
// read field by field with protowire (no generated types: the state types
// are the messages). Field numbers, like the JSON names, are added and
// never reused; fields a reader does not know are skipped, as the JSON
// decoder skips unknown keys.
//
// A binary entry must decode to exactly what the JSON round trip of the
// same request gives the FSM. So the encoder gives up (and Encode writes
// JSON) on what JSON would change: a string that is not valid UTF-8 (JSON
// replaces its bytes), a time not in UTC or outside years 0-9999 (JSON
// keeps the zone's offset, or fails); and the decoder refuses what the
// encoder never writes. Empty slices and maps are not written, and read
// back as nil, as the JSON fields' omitempty does.

// errNotBinary says a request has a value the binary form cannot carry
// the way JSON does; Encode then writes JSON.
var errNotBinary = errors.New("value not representable in the binary form")

// wenc appends one message's fields.
type wenc struct {
	b   []byte
	bad bool // a value JSON would change: encode as JSON instead
}

func (e *wenc) str(n protowire.Number, s string) {
	if s != "" {
		e.strAlways(n, s)
	}
}

// strAlways writes s even when empty: an element of a list.
func (e *wenc) strAlways(n protowire.Number, s string) {
	if !utf8.ValidString(s) {
		e.bad = true
		return
	}
	e.b = protowire.AppendTag(e.b, n, protowire.BytesType)
	e.b = protowire.AppendString(e.b, s)
}

func (e *wenc) strs(n protowire.Number, l []string) {
	for _, s := range l {
		e.strAlways(n, s)
	}
}

func (e *wenc) int(n protowire.Number, v int) {
	if v != 0 {
		e.intAlways(n, v)
	}
}

func (e *wenc) intAlways(n protowire.Number, v int) {
	e.b = protowire.AppendTag(e.b, n, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, protowire.EncodeZigZag(int64(v)))
}

func (e *wenc) uint(n protowire.Number, v uint64) {
	if v != 0 {
		e.b = protowire.AppendTag(e.b, n, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, v)
	}
}

func (e *wenc) bool(n protowire.Number, v bool) {
	if v {
		e.b = protowire.AppendTag(e.b, n, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, 1)
	}
}

// msg writes a nested message (even an empty one: a non-nil pointer).
func (e *wenc) msg(n protowire.Number, fill func(*wenc)) {
	sub := wenc{}
	fill(&sub)
	if sub.bad {
		e.bad = true
		return
	}
	e.b = protowire.AppendTag(e.b, n, protowire.BytesType)
	e.b = protowire.AppendBytes(e.b, sub.b)
}

// time writes a UTC time as seconds and nanoseconds since 1970; the zero
// time is not written.
func (e *wenc) time(n protowire.Number, t time.Time) {
	if t.Location() != time.UTC {
		e.bad = true
		return
	}
	if t.IsZero() {
		return
	}
	if y := t.Year(); y < 0 || y > 9999 {
		e.bad = true
		return
	}
	e.msg(n, func(s *wenc) {
		s.b = protowire.AppendTag(s.b, 1, protowire.VarintType)
		s.b = protowire.AppendVarint(s.b, protowire.EncodeZigZag(t.Unix()))
		s.uint(2, uint64(t.Nanosecond()))
	})
}

// wfield is one field read from a message.
type wfield struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // a varint's value
	b   []byte // a length-delimited value
}

// eachField calls fn for every field of the message b, in order; fields of
// other wire types than varint and length-delimited are skipped.
func eachField(b []byte, fn func(f wfield) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := wfield{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue // a newer writer's field of a kind this one never writes
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
	}
	return nil
}

var errWireType = errors.New("wrong wire type")

func (f wfield) str() (string, error) {
	if f.typ != protowire.BytesType {
		return "", errWireType
	}
	if !utf8.Valid(f.b) {
		return "", errors.New("string is not valid UTF-8")
	}
	return string(f.b), nil
}

func (f wfield) int() (int, error) {
	if f.typ != protowire.VarintType {
		return 0, errWireType
	}
	return int(protowire.DecodeZigZag(f.v)), nil
}

func (f wfield) uint() (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, errWireType
	}
	return f.v, nil
}

func (f wfield) bool() (bool, error) {
	if f.typ != protowire.VarintType {
		return false, errWireType
	}
	return f.v != 0, nil
}

func (f wfield) msg(fn func(f wfield) error) error {
	if f.typ != protowire.BytesType {
		return errWireType
	}
	return eachField(f.b, fn)
}

func (f wfield) time() (time.Time, error) {
	var sec int64
	var nsec uint64
	err := f.msg(func(g wfield) error {
		switch g.num {
		case 1:
			if g.typ != protowire.VarintType {
				return errWireType
			}
			sec = protowire.DecodeZigZag(g.v)
		case 2:
			v, err := g.uint()
			nsec = v
			return err
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	if nsec >= 1e9 {
		return time.Time{}, fmt.Errorf("nanoseconds %d out of range", nsec)
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("year %d out of range", y)
	}
	return t, nil
}

// Field setters for eachField callbacks: each reads f into *p.

func setStr(p *string, f wfield) (err error) { *p, err = f.str(); return }
func setInt(p *int, f wfield) (err error)    { *p, err = f.int(); return }
func setUint(p *uint64, f wfield) (err error) {
	*p, err = f.uint()
	return
}
func setBool(p *bool, f wfield) (err error)      { *p, err = f.bool(); return }
func setTime(p *time.Time, f wfield) (err error) { *p, err = f.time(); return }

func setDuration(p *Duration, f wfield) error {
	v, err := f.int()
	*p = Duration(v)
	return err
}

func appendStr(p *[]string, f wfield) error {
	s, err := f.str()
	if err == nil {
		*p = append(*p, s)
	}
	return err
}
