package drain

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestDrainForwardsPrimaryLinesOnceAcrossRestarts: a node drains the
// lines it took from its agents (not the copies replicated to it), in
// order, and a restarted drainer goes on after the last line it sent.
func TestDrainForwardsPrimaryLinesOnceAcrossRestarts(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	var order []string
	loki := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var push struct {
			Streams []struct {
				Values [][2]string `json:"values"`
			} `json:"streams"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &push); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		for _, s := range push.Streams {
			for _, v := range s.Values {
				got[v[1]]++
				order = append(order, v[1])
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer loki.Close()

	ph := statetest.New(t)
	ph.App(apitypes.AppSpec{Name: "web", Image: "i", Instances: new(int)})
	ph.Must(state.LogDrainAddType, &state.LogDrainAddRequest{Drain: state.LogDrain{ID: "d-1", Tenant: "acme", App: "web", URL: "loki+" + loki.URL}, Time: statetest.T0})
	dir := t.TempDir()
	logs, err := logstore.Open(logstore.Config{Dir: dir + "/logs"})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cfg := RunnerConfig{State: ph.Store(), Lines: logs, Events: noEvents{}, Dir: dir + "/drains"}
	var seq uint64
	add := func(n int, primary bool, inst string) {
		var recs []logstore.Record
		for range n {
			seq++
			recs = append(recs, logstore.Record{Time: time.Now(), Tenant: "acme", App: "web", Instance: inst, Stream: "stdout", Seq: seq,
				Line: inst + "-" + time.Now().Format("150405.000000000") + "-" + string(rune('a'+seq%26)), Primary: primary})
		}
		if _, err := logs.Append(recs); err != nil {
			t.Fatal(err)
		}
	}
	start := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- NewRunner(cfg).Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("drainer: %v", err)
			}
		}
	}
	count := func() (lines, dups int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got {
			if n > 1 {
				dups++
			}
		}
		return len(got), dups
	}
	wait := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if n, _ := count(); n >= want {
				return
			}
			if time.Now().After(deadline) {
				n, _ := count()
				t.Fatalf("loki got %d lines, want %d", n, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// cursorAt waits until the drain's cursor on disk is at least pos: the
	// runner has handled (and a graceful stop will not resend) what lies
	// before it. A stop while a batch is in flight may resend it: drains
	// deliver at least once.
	cursorAt := func(pos uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := os.ReadFile(filepath.Join(dir, "drains", "d-1"))
			if got, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && perr == nil && got >= pos {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the drain's cursor did not reach %d: %q %v", pos, b, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	stop := start()
	cursorAt(0)        // the drain starts at the store's present position
	add(50, true, "p") // taken from this node's agents
	last := logs.Stats().LastPos
	add(20, false, "r") // replicated from another node: not ours
	wait(50)
	cursorAt(last)
	stop()
	add(10, true, "p") // while the node is down
	stop = start()
	add(5, true, "p")
	wait(65)
	time.Sleep(200 * time.Millisecond)
	stop()
	n, dups := count()
	mu.Lock()
	defer mu.Unlock()
	if n != 65 || dups != 0 || len(order) != 65 {
		t.Fatalf("loki got %d distinct lines (%d sent twice, %d in all), want 65 once each", n, dups, len(order))
	}
	for _, l := range order {
		if l[0] != 'p' {
			t.Fatalf("a replicated line was drained: %q", l)
		}
	}
}

type noEvents struct{}

func (noEvents) Record(context.Context, state.Event) {}
