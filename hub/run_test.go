package hub

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunAll: the tasks run together until ctx ends; a task that fails,
// or stops early, stops the others; runAll waits for every one and
// returns the first failure with the task's name.
func TestRunAll(t *testing.T) {
	boom := errors.New("boom")
	var stopped atomic.Int32
	untilDone := runFunc(func(ctx context.Context) error {
		<-ctx.Done()
		stopped.Add(1)
		return nil
	})
	tests := []struct {
		name    string
		cancel  bool // end ctx instead of a task ending
		early   runner
		wantErr string
	}{
		{name: "ctx ends", cancel: true},
		{name: "one fails", early: runFunc(func(context.Context) error { return boom }), wantErr: "planner: boom"},
		{name: "one stops", early: runFunc(func(context.Context) error { return nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stopped.Store(0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tasks := []task{{"a", untilDone}, {"b", untilDone}}
			if tt.early != nil {
				tasks = append(tasks, task{"planner", tt.early})
			}
			if tt.cancel {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			err := runAll(ctx, tasks)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, boom)) {
				t.Fatalf("runAll: %v, want %q", err, tt.wantErr)
			}
			if n := stopped.Load(); n != 2 {
				t.Fatalf("%d of 2 tasks stopped before runAll returned", n)
			}
		})
	}
}
