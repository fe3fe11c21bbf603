package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/hashicorp/go-memdb"
)

// A restore decodes records on several goroutines while one inserts them,
// in the stream's order, into the new database: decoding (JSON into the
// stored types) and inserting (memdb's indexes) cost about the same, and
// a restore is what keeps a restarted or new node from serving.

// restoreBatchSize is how many records a decoding goroutine takes at once.
const restoreBatchSize = 512

// restoreBatch is a run of consecutive records (lines of the stream).
type restoreBatch struct {
	first   int // the number of the first record
	lines   [][]byte
	readErr error // what ended the stream after lines (nil: more follows)

	// Set by decode, then done is closed.
	tables []string
	objs   []any
	end    *snapRecord // the trailer, when lines hold it (where objs ends)
	err    error
	done   chan struct{}
}

// restoreRecords reads every record after the header up to and including
// the trailer and inserts them into txn, but for the instances, which
// it returns.
func restoreRecords(br *bufio.Reader, txn *memdb.Txn) ([]*Instance, error) {
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	work := make(chan *restoreBatch, workers)
	ordered := make(chan *restoreBatch, 2*workers)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				b.decode()
				close(b.done)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ordered)
		defer close(work)
		for n := 0; ; {
			b := &restoreBatch{first: n, done: make(chan struct{})}
			for len(b.lines) < restoreBatchSize && b.readErr == nil {
				line, err := readLine(br)
				if err != nil {
					b.readErr = err
					break
				}
				b.lines = append(b.lines, line)
				n++
				if bytes.HasPrefix(line, []byte(`{"end":`)) {
					b.readErr = io.EOF // the trailer as writeSnapshot writes it: nothing follows
				}
			}
			for _, ch := range []chan *restoreBatch{work, ordered} {
				select {
				case ch <- b:
				case <-quit:
					return
				}
			}
			if b.readErr != nil {
				return
			}
		}
	}()
	insts, err := insertRecords(ordered, txn)
	close(quit)
	for range ordered {
	}
	wg.Wait()
	return insts, err
}

// insertRecords inserts the decoded batches in order until the trailer,
// and returns the instances, which the caller loads (loadInstances).
func insertRecords(ordered <-chan *restoreBatch, txn *memdb.Txn) ([]*Instance, error) {
	n := 0
	var audit *auditChunk // the audit log's last row
	var insts []*Instance
	for b := range ordered {
		<-b.done
		for i, obj := range b.objs {
			var err error
			switch o := obj.(type) {
			case *AuditEntry:
				audit, err = putAudit(txn, audit, *o)
			case *Instance:
				insts = append(insts, o)
			default:
				err = txn.Insert(b.tables[i], obj)
			}
			if err != nil {
				return nil, fmt.Errorf("snapshot record %d (%s): %w", n, b.tables[i], err)
			}
			n++
		}
		if b.err != nil {
			return nil, b.err
		}
		if b.end != nil {
			if b.end.Count != n {
				return nil, fmt.Errorf("snapshot has %d records, trailer says %d", n, b.end.Count)
			}
			return insts, nil
		}
		if b.readErr != nil {
			err := b.readErr
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("snapshot record %d: %w", n, err)
		}
	}
	return nil, fmt.Errorf("snapshot record %d: %w", n, io.ErrUnexpectedEOF)
}

// decode decodes b's lines up to the trailer or the first bad one.
func (b *restoreBatch) decode() {
	for i, line := range b.lines {
		n := b.first + i
		table, obj, end, err := decodeRecord(n, line)
		if err != nil {
			b.err = err
			return
		}
		if end != nil {
			b.end = end
			return
		}
		b.tables = append(b.tables, table)
		b.objs = append(b.objs, obj)
	}
}

// decodeRecord decodes record n: an object of a table, or the trailer.
func decodeRecord(n int, line []byte) (string, any, *snapRecord, error) {
	if table, raw, ok := splitRecord(line); ok {
		if obj := newObject(table); obj != nil && json.Unmarshal(raw, obj) == nil {
			return table, obj, nil, nil
		}
	}
	// Anything but a plain object record, or a bad one: decoded in full,
	// for the trailer or the error.
	var rec snapRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		return "", nil, nil, fmt.Errorf("snapshot record %d: %w", n, err)
	}
	if rec.End {
		return "", nil, &rec, nil
	}
	obj := newObject(rec.Table)
	if obj == nil {
		return "", nil, nil, fmt.Errorf("snapshot record %d: unknown table %q", n, rec.Table)
	}
	if err := json.Unmarshal(rec.Object, obj); err != nil {
		return "", nil, nil, fmt.Errorf("snapshot record %d (%s): %w", n, rec.Table, err)
	}
	return rec.Table, obj, nil, nil
}

// splitRecord splits a record line as writeSnapshot frames it,
// {"t":"TABLE","o":OBJECT}, into the table and the object's JSON, so that
// the object is parsed once; ok is false for any other line.
func splitRecord(line []byte) (table string, raw []byte, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"t":"`))
	if !ok {
		return "", nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return "", nil, false
	}
	table, rest = string(rest[:i]), rest[i+1:]
	rest, ok = bytes.CutPrefix(rest, []byte(`,"o":`))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != '}' {
		return "", nil, false
	}
	return table, rest[:len(rest)-1], true
}

// readLine returns the next non-blank line of the stream, without its
// newline, in a slice of its own; io.EOF at the end.
func readLine(br *bufio.Reader) ([]byte, error) {
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := bytes.Clone(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			return bytes.Clone(trimmed), nil
		}
		if err != nil {
			return nil, err
		}
	}
}
