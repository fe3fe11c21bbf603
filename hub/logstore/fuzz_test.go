package logstore

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/seglog"
)

func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(1), "inst", "stdout", uint64(1), "line", false, uint64(1))
	f.Add(int64(-1<<63), "i\xff", "", uint64(1<<64-1), "", true, uint64(1<<64-1))
	f.Fuzz(func(t *testing.T, ns int64, inst, stream string, seq uint64, line string, partial bool, pos uint64) {
		r := Record{Time: time.Unix(0, ns), Tenant: "t", App: "a", Instance: inst, Stream: stream, Seq: seq, Line: line, Partial: partial}
		if validate(&r, nil) != nil || pos == 0 {
			return
		}
		enc := appendRecord([]byte("prefix"), &r, pos)[len("prefix"):]
		if len(enc) != recordSize(&r, pos) {
			t.Fatalf("recordSize %d, encoded %d", recordSize(&r, pos), len(enc))
		}
		got, n, err := decodeRecord(append(enc, "trailing"...))
		if err != nil || n != len(enc) {
			t.Fatalf("decode: %v (n %d of %d)", err, n, len(enc))
		}
		r.Tenant, r.App, r.Pos = "", "", pos
		if !got.Time.Equal(r.Time) || got.Instance != r.Instance || got.Stream != r.Stream || got.Seq != r.Seq ||
			got.Line != r.Line || got.Partial != r.Partial || got.Pos != r.Pos {
			t.Fatalf("round trip:\n got  %+v\n want %+v", got, r)
		}
	})
}

// fixCRCs rewrites the CRC of every record in data whose length field fits,
// so the fuzzer gets past the CRC into payload decoding and the order
// checks of recovery.
func fixCRCs(data []byte) {
	for p := 0; p+recHeaderLen <= len(data); {
		n, err := seglog.FrameLen(data[p:], maxPayload)
		if err != nil || p+n > len(data) {
			return
		}
		seglog.EndFrame(data[p:p+n], 0)
		p += n
	}
}

func FuzzRecover(f *testing.F) {
	var seg []byte
	for i, r := range []Record{
		{Time: t0, Instance: "a", Stream: "stdout", Seq: 1, Line: "one"},
		{Time: t0.Add(time.Second), Instance: "b", Stream: "stderr", Seq: 5, Line: "two", Partial: true},
		{Time: t0.Add(-time.Second), Instance: "a", Stream: "stdout", Seq: 2, Line: "three"},
	} {
		seg = appendRecord(seg, &r, uint64(i+1))
	}
	f.Add(true, false, seg)
	f.Add(true, true, seg[:len(seg)-3])
	f.Add(true, false, append(bytes.Clone(seg), 1, 2, 3, 4, 5, 6, 7, 8, 9))
	f.Add(false, false, append(encodeHeader("t1", "web"), seg...))
	f.Add(false, false, append(encodeHeader("t1", "api"), seg...))
	f.Add(false, false, []byte("WHLOG"))
	f.Add(false, false, []byte("not a segment at all"))
	f.Fuzz(func(t *testing.T, withHeader, fixCRC bool, data []byte) {
		dir := t.TempDir()
		appDir := filepath.Join(dir, "t1", "web")
		if err := os.MkdirAll(appDir, 0o750); err != nil {
			t.Fatal(err)
		}
		data = bytes.Clone(data)
		if withHeader {
			if fixCRC {
				fixCRCs(data)
			}
			data = append(encodeHeader("t1", "web"), data...)
		}
		if err := os.WriteFile(segPath(appDir, 1), data, 0o640); err != nil {
			t.Fatal(err)
		}
		cfg := Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return t0 }}
		s, err := Open(cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		recs, _, err := s.Query(Query{Tenant: "t1", App: "web", Limit: 1 << 30})
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		for _, r := range recs {
			if r.Seq == 0 || r.Pos == 0 || r.Instance == "" {
				t.Fatalf("query returned invalid record %+v", r)
			}
		}
		// Appending works, after every recovered position.
		last := s.Stats().LastPos
		n, err := s.Append([]Record{{Time: t0, Tenant: "t1", App: "web", Instance: "new", Seq: 1 << 63, Line: "x"}})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if got, _, _ := s.Query(Query{Tenant: "t1", App: "web", AfterPos: last}); len(got) != n || (n == 1 && got[0].Pos != last+1) {
			t.Fatalf("append after recovery: %+v", got)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		// Recovery is stable: a second Open sees the same records.
		s, err = Open(cfg)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s.Close()
		again, _, err := s.Query(Query{Tenant: "t1", App: "web", Limit: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		again = slices.DeleteFunc(again, func(r Record) bool { return r.Instance == "new" && r.Line == "x" && r.Pos == last+1 })
		if !slices.Equal(again, recs) {
			t.Fatalf("second recovery differs: %d vs %d records", len(again), len(recs))
		}
	})
}

// FuzzDecodeFiles feeds index and state bodies, with valid magic and CRC,
// to their decoders: they must never panic.
func FuzzDecodeFiles(f *testing.F) {
	idx := encodeIndex(&segIndex{size: 100, hdrLen: 20, records: 2, blocks: []block{{20, 1, 2, 3}, {60, 0, 5, 9}}, inst: map[string]uint64{"a": 3}})
	st := encodeState(&stateFile{lastPos: 9, insts: []instState{{key: instKey{"t", "a", "i"}, maxSeq: 3, lastActive: -1}}})
	f.Add(false, idx[len(idxMagic):len(idx)-4])
	f.Add(true, st[len(stateMagic):len(st)-4])
	f.Fuzz(func(t *testing.T, state bool, body []byte) {
		magic := idxMagic
		if state {
			magic = stateMagic
		}
		buf := append([]byte(magic), body...)
		buf = seglog.Seal(buf)
		if state {
			if st, err := decodeState(buf); err == nil && !bytes.Equal(encodeState(st), buf) {
				t.Fatal("state does not re-encode to its bytes")
			}
			return
		}
		x, err := decodeIndex(buf)
		if err != nil {
			return
		}
		y, err := decodeIndex(encodeIndex(x))
		if err != nil || y.size != x.size || y.records != x.records || !slices.Equal(y.blocks, x.blocks) || len(y.inst) != len(x.inst) {
			t.Fatalf("index does not round trip: %v", err)
		}
	})
}
