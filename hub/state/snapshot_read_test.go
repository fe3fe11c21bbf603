package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// encodeSnapshotReference writes a snapshot the way every earlier version
// did: each record through json.Encoder. writeSnapshot must write the same
// bytes, so that snapshots of one state stay identical across versions.
func encodeSnapshotReference(t *testing.T, s *Store) []byte {
	t.Helper()
	db, _ := s.current()
	txn := db.Txn(false)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(snapHeader{Format: snapshotFormat, Metering: 1}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, table := range snapshotTables {
		if err := eachRecord(txn, table, func(obj any) error {
			b, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			n++
			return enc.Encode(snapRecord{Table: table, Object: b})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Encode(snapRecord{End: true, Count: n}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// manyRecords is fill plus enough instances for several restore batches,
// with strings that JSON escapes.
func manyRecords(t *testing.T) *harness {
	h := newHarness(t)
	fill(h)
	var place []Instance
	for i := range 3 * restoreBatchSize {
		place = append(place, Instance{ID: fmt.Sprintf("m-%05d", i), Tenant: "acme", App: "web", Version: 2, Host: "host1"})
	}
	h.must(PlanApplyType, &PlanApplyRequest{Place: place, Time: t0})
	h.must(InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{
		{ID: "m-00007", State: InstanceFailed, Message: "exit 1: <html> & \"quotes\" \u2028 \\ é\n"}}, Time: t0})
	return h
}

func TestSnapshotBytesAsBefore(t *testing.T) {
	h := manyRecords(t)
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	if want := encodeSnapshotReference(t, h.fsm.Store()); !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("snapshot bytes differ from json.Encoder's (%d vs %d bytes)", buf.Len(), len(want))
	}
}

func TestRestoreStreams(t *testing.T) {
	h := manyRecords(t)
	var buf bytes.Buffer
	snapshotTo(t, h.fsm, &buf)
	raw := append([]byte(nil), buf.Bytes()...)
	want := dump(t, h.fsm.Store())
	lines := strings.SplitAfter(string(raw), "\n")
	lines = lines[:len(lines)-1] // after the last newline
	records := len(lines) - 2    // without header and trailer
	if records < 3*restoreBatchSize {
		t.Fatalf("only %d records", records)
	}
	// Another encoding of the same records: keys reordered, spaces, no
	// final newline. A JSON stream is what the format promises.
	var other strings.Builder
	for i, l := range lines {
		var rec snapRecord
		if i > 0 && i < len(lines)-1 {
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&other, "{ \"o\" : %s , \"t\" : %q }\n\n", rec.Object, rec.Table)
			continue
		}
		other.WriteString(strings.TrimSuffix(l, "\n"))
		if i == 0 {
			other.WriteString("\n")
		}
	}
	replace := func(i int, with string) string {
		c := append([]string(nil), lines...)
		c[i] = with
		return strings.Join(c, "")
	}
	tests := []struct {
		name   string
		stream string
		ok     bool
	}{
		{"as written", string(raw), true},
		{"another encoding", other.String(), true},
		{"cut at a batch boundary", strings.Join(lines[:1+restoreBatchSize], ""), false},
		{"cut in a record", string(raw[:len(raw)/2]), false},
		{"no trailer", strings.Join(lines[:len(lines)-1], ""), false},
		{"trailer miscounts", replace(len(lines)-1, fmt.Sprintf("{\"end\":true,\"count\":%d}\n", records+1)), false},
		{"a bad record in a late batch", replace(2*restoreBatchSize+5, "{\"t\":\"instances\",\"o\":{\"ID\":7}}\n"), false},
		{"an unknown table", replace(restoreBatchSize+1, "{\"t\":\"nope\",\"o\":{}}\n"), false},
		{"a duplicate object", replace(2, lines[1]), true}, // inserting it again replaces it: same state minus the line replaced
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h2 := newHarness(t)
			h2.must(TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "stale"}, Time: t0})
			before := dump(t, h2.fsm.Store())
			err := h2.fsm.Restore(nopCloser{bytes.NewBufferString(tc.stream)})
			if tc.ok != (err == nil) {
				t.Fatalf("restore: %v, want ok %v", err, tc.ok)
			}
			got := dump(t, h2.fsm.Store())
			switch {
			case !tc.ok && !reflect.DeepEqual(got, before):
				t.Fatal("a failed restore changed the store")
			case tc.name == "a duplicate object":
				if rows(got) != rows(want)-1 {
					t.Fatalf("restored %d rows, want %d: all but the replaced record", rows(got), rows(want)-1)
				}
			case tc.ok && !reflect.DeepEqual(got, want):
				t.Fatal("restored state differs from the snapshot's")
			}
		})
	}
}

func TestReadLineLong(t *testing.T) {
	long := strings.Repeat("x", 200_000)
	br := bufio.NewReaderSize(strings.NewReader("a\n\n  \n"+long+"\nlast"), 16)
	var got []string
	for {
		l, err := readLine(br)
		if err != nil {
			break
		}
		got = append(got, string(l))
	}
	if len(got) != 3 || got[0] != "a" || got[1] != long || got[2] != "last" {
		t.Fatalf("lines %d: %.20q", len(got), got)
	}
}

func rows(d map[string][]any) int {
	n := 0
	for _, r := range d {
		n += len(r)
	}
	return n
}
