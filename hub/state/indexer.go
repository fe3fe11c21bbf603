package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// stringsIndex indexes objects of type T by one or more string fields read
// by a plain function instead of by reflection (memdb's StringFieldIndex
// looks the field up by name on every call: a cost every write of the
// table pays, on every node). Its keys are those of a StringFieldIndex
// (one field) or a CompoundIndex of StringFieldIndexes (several) over the
// same fields, byte for byte: each string followed by a NUL; an object
// with an empty field is not indexed; PrefixFromArgs takes the leading
// fields, the last of them as a prefix.
type stringsIndex[T any] struct {
	n      int // how many fields fields returns
	fields func(*T, *[2]string)
}

var (
	_ memdb.SingleIndexer = stringsIndex[App]{}
	_ memdb.PrefixIndexer = stringsIndex[App]{}
)

// stringIndex indexes T by one string field.
func stringIndex[T any](field func(*T) string) stringsIndex[T] {
	return stringsIndex[T]{n: 1, fields: func(o *T, out *[2]string) { out[0] = field(o) }}
}

// stringPairIndex indexes T by two string fields, as a CompoundIndex.
func stringPairIndex[T any](first, second func(*T) string) stringsIndex[T] {
	return stringsIndex[T]{n: 2, fields: func(o *T, out *[2]string) { out[0], out[1] = first(o), second(o) }}
}

// FromObject implements memdb.SingleIndexer.
func (x stringsIndex[T]) FromObject(raw any) (bool, []byte, error) {
	o, ok := raw.(*T)
	if !ok {
		return false, nil, fmt.Errorf("index of %T: got %T", (*T)(nil), raw)
	}
	var f [2]string
	x.fields(o, &f)
	size := 0
	for _, s := range f[:x.n] {
		if s == "" {
			return false, nil, nil
		}
		size += len(s) + 1
	}
	key := make([]byte, 0, size)
	for _, s := range f[:x.n] {
		key = append(append(key, s...), 0)
	}
	return true, key, nil
}

// FromArgs implements memdb.Indexer: one string per field.
func (x stringsIndex[T]) FromArgs(args ...any) ([]byte, error) {
	if len(args) != x.n {
		return nil, fmt.Errorf("%d arguments for an index of %d fields", len(args), x.n)
	}
	return x.key(args, false)
}

// PrefixFromArgs implements memdb.PrefixIndexer: up to one string per
// field, the last one a prefix.
func (x stringsIndex[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	if len(args) > x.n {
		return nil, fmt.Errorf("more arguments than index fields")
	}
	return x.key(args, true)
}

func (x stringsIndex[T]) key(args []any, prefix bool) ([]byte, error) {
	var key []byte
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("argument must be a string: %#v", a)
		}
		key = append(key, s...)
		if !prefix || i < len(args)-1 {
			key = append(key, 0)
		}
	}
	return key, nil
}

// uint64Index indexes objects of type T by a uint64 field read by a plain
// function. Its keys sort as the numbers do, like the 8 big-endian bytes of
// memdb.UintFieldIndex, but they spell every 4 bits as a byte of their own
// (nibbleKey), so that a node of the index's radix tree has at most 16
// children instead of 256. go-immutable-radix copies a node's whole edge
// list whenever it writes below it, and numbers that grow one by one (audit
// sequence numbers, Raft indexes) all land under the node of their last
// byte: with 8-bit digits each insert copied up to 256 edges twice (~8 KB).
type uint64Index[T any] struct {
	field func(*T) uint64
}

var _ memdb.SingleIndexer = uint64Index[Instance]{}

// FromObject implements memdb.SingleIndexer.
func (x uint64Index[T]) FromObject(raw any) (bool, []byte, error) {
	o, ok := raw.(*T)
	if !ok {
		return false, nil, fmt.Errorf("index of %T: got %T", (*T)(nil), raw)
	}
	return true, nibbleKey(x.field(o)), nil
}

// FromArgs implements memdb.Indexer: one uint64.
func (x uint64Index[T]) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("must provide only a single argument")
	}
	v, ok := args[0].(uint64)
	if !ok {
		return nil, fmt.Errorf("argument must be a uint64: %#v", args[0])
	}
	return nibbleKey(v), nil
}

// nibbleKey is v as 16 bytes of 4 bits each, most significant first: keys
// compare as their numbers do.
func nibbleKey(v uint64) []byte {
	k := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		k[i] = byte(v & 0xf)
		v >>= 4
	}
	return k
}
