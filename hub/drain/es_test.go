package drain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeES implements the part of Elasticsearch's _bulk API that the sender
// uses: "create" actions, answered per item with 201 or 409, plus injected
// failures.
type fakeES struct {
	t *testing.T

	mu       sync.Mutex
	docs     map[string]esTestDoc // by index/id
	requests int
	ids      [][]string // ids of each request, in order
	auth     string
	status   []int                                  // whole-request statuses to answer first
	itemFail func(req int, id string) (int, string) // status and error type for an item, 0 for none
}

// esTestDoc is the document Wharf indexes, written down independently of
// the sender's types.
type esTestDoc struct {
	Timestamp string `json:"@timestamp"`
	Tenant    string `json:"tenant"`
	App       string `json:"app"`
	Instance  string `json:"instance"`
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Message   string `json:"message"`
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	req := f.requests
	if u, p, ok := r.BasicAuth(); ok {
		f.auth = u + ":" + p
	}
	if r.Method != http.MethodPost || r.URL.Path != "/_bulk" {
		f.t.Errorf("%s %s, want POST /_bulk", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		f.t.Errorf("Content-Type %q", ct)
	}
	if len(f.status) > 0 {
		st := f.status[0]
		f.status = f.status[1:]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"error":{"type":"injected","reason":"status %d"},"status":%d}`, st, st)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if !bytes.HasSuffix(body, []byte("\n")) {
		f.t.Errorf("bulk body does not end with a newline")
	}
	type item struct {
		Index  string `json:"_index"`
		ID     string `json:"_id"`
		Status int    `json:"status"`
		Error  any    `json:"error,omitempty"`
	}
	var items []map[string]item
	var ids []string
	errorsFlag := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var action struct {
			Create *struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"create"`
		}
		if err := strictDecode(sc.Bytes(), &action); err != nil || action.Create == nil {
			f.t.Errorf("action line %q: %v", sc.Bytes(), err)
			http.Error(w, "bad action", http.StatusBadRequest)
			return
		}
		if !sc.Scan() {
			f.t.Errorf("action without a document")
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		var doc esTestDoc
		if err := strictDecode(sc.Bytes(), &doc); err != nil {
			f.t.Errorf("document line %q: %v", sc.Bytes(), err)
			http.Error(w, "bad document", http.StatusBadRequest)
			return
		}
		c := action.Create
		ids = append(ids, c.ID)
		it := item{Index: c.Index, ID: c.ID, Status: http.StatusCreated}
		key := c.Index + "/" + c.ID
		if st, typ := f.fail(req, c.ID); st != 0 {
			it.Status = st
			it.Error = map[string]any{"type": typ, "reason": "injected " + typ}
		} else if _, ok := f.docs[key]; ok {
			it.Status = http.StatusConflict
			it.Error = map[string]any{"type": "version_conflict_engine_exception", "reason": "document already exists"}
		} else {
			f.docs[key] = doc
		}
		if it.Status >= 300 {
			errorsFlag = true
		}
		items = append(items, map[string]item{"create": it})
	}
	f.ids = append(f.ids, ids)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"took": 3, "errors": errorsFlag, "items": items})
}

func (f *fakeES) fail(req int, id string) (int, string) {
	if f.itemFail == nil {
		return 0, ""
	}
	return f.itemFail(req, id)
}

func startES(t *testing.T) (*fakeES, string) {
	f := &fakeES{t: t, docs: map[string]esTestDoc{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.Listener.Addr().String()
}

// wantESID is the documented id: the first 20 bytes of
// SHA-256(tenant \0 app \0 instance \0 seq), in hex.
func wantESID(l Line) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d", l.Tenant, l.App, l.Instance, l.Seq)))
	return hex.EncodeToString(sum[:20])
}

func TestESBulk(t *testing.T) {
	f, addr := startES(t)
	s := newSender(t, "es+http://elastic:pa%40ss@"+addr, Options{})
	lines := testLines()
	ctx := context.Background()
	if err := s.Send(ctx, lines); err != nil {
		t.Fatal(err)
	}
	if f.auth != "elastic:pa@ss" {
		t.Errorf("basic auth %q", f.auth)
	}
	if len(f.docs) != len(lines) {
		t.Fatalf("%d documents, want %d", len(f.docs), len(lines))
	}
	for i, l := range lines {
		if f.ids[0][i] != wantESID(l) {
			t.Errorf("line %d id %s, want %s", i, f.ids[0][i], wantESID(l))
		}
		doc, ok := f.docs["wharf-logs/"+wantESID(l)]
		if !ok {
			t.Errorf("line %d not in index wharf-logs", i)
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, doc.Timestamp)
		if err != nil || !ts.Equal(l.Time) || !strings.HasSuffix(doc.Timestamp, "Z") {
			t.Errorf("line %d @timestamp %q, want %v in UTC (%v)", i, doc.Timestamp, l.Time, err)
		}
		want := esTestDoc{doc.Timestamp, l.Tenant, l.App, l.Instance, l.Stream, l.Seq, l.Line}
		if doc != want {
			t.Errorf("line %d document\n got %.200v\nwant %.200v", i, doc, want)
		}
	}

	// A replay creates nothing new: every item gets 409, which is success.
	if err := s.Send(ctx, lines); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if len(f.docs) != len(lines) || f.requests != 2 {
		t.Errorf("after a replay: %d documents, %d requests", len(f.docs), f.requests)
	}
	if fmt.Sprint(f.ids[0]) != fmt.Sprint(f.ids[1]) {
		t.Errorf("ids differ between sends:\n%v\n%v", f.ids[0], f.ids[1])
	}
}

func TestESCustomIndex(t *testing.T) {
	f, addr := startES(t)
	s := newSender(t, "es+http://"+addr+"/app-logs.2025", Options{})
	l := testLines()[0]
	if err := s.Send(context.Background(), []Line{l}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.docs["app-logs.2025/"+wantESID(l)]; !ok {
		t.Errorf("documents %v, want one in app-logs.2025", f.docs)
	}
}

func TestESItemRetry(t *testing.T) {
	f, addr := startES(t)
	lines := testLines()
	busy := wantESID(lines[2])
	f.itemFail = func(req int, id string) (int, string) {
		if req == 1 && id == busy {
			return http.StatusTooManyRequests, "es_rejected_execution_exception"
		}
		return 0, ""
	}
	s := newSender(t, "es+http://"+addr, Options{})
	var failures []error
	err := Deliver(testContext(t), s, lines, time.Millisecond, time.Millisecond, func(_ int, err error) {
		failures = append(failures, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 1 || errors.Is(failures[0], ErrPermanent) {
		t.Fatalf("failures %v, want one temporary failure", failures)
	}
	if f.requests != 2 || len(f.docs) != len(lines) {
		t.Errorf("%d requests, %d documents; want 2 and %d", f.requests, len(f.docs), len(lines))
	}
}

func TestESItemPermanent(t *testing.T) {
	f, addr := startES(t)
	lines := testLines()
	bad := wantESID(lines[1])
	f.itemFail = func(_ int, id string) (int, string) {
		if id == bad {
			return http.StatusBadRequest, "mapper_parsing_exception"
		}
		return 0, ""
	}
	s := newSender(t, "es+http://"+addr, Options{})
	err := s.Send(context.Background(), lines)
	if !errors.Is(err, ErrPermanent) {
		t.Fatalf("Send: %v, want ErrPermanent", err)
	}
	if !strings.Contains(err.Error(), "mapper_parsing_exception") || !strings.Contains(err.Error(), "1 of 7") {
		t.Errorf("error %q should count the failed lines and give the first reason", err)
	}
}

func TestESStatus(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusUnauthorized, true},
		{http.StatusTooManyRequests, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			f, addr := startES(t)
			f.status = []int{tc.status}
			s := newSender(t, "es+http://elastic:hunter2@"+addr, Options{})
			err := s.Send(context.Background(), testLines())
			if err == nil || errors.Is(err, ErrPermanent) != tc.permanent {
				t.Fatalf("Send: %v, want permanent=%v", err, tc.permanent)
			}
			if !strings.Contains(err.Error(), "injected") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q should carry the reason and no password", err)
			}
			// The next attempt goes through.
			if err := s.Send(context.Background(), testLines()); err != nil {
				t.Errorf("second Send: %v", err)
			}
		})
	}
}
