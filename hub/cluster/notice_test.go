package cluster

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// stuckPipeline is a pipeline whose queue is full and whose follower has
// gone silent: a request waits until the pipeline closes.
type stuckPipeline struct {
	once   sync.Once
	closed chan struct{}
}

func (s *stuckPipeline) AppendEntries(*raft.AppendEntriesRequest, *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	<-s.closed
	return nil, raft.ErrPipelineShutdown
}
func (s *stuckPipeline) Consumer() <-chan raft.AppendFuture { return nil }
func (s *stuckPipeline) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// Raft closing a pipeline on which a notice waits for room ends the
// notice, rather than waiting for it.
func TestClosingAPipelineEndsAWaitingNotice(t *testing.T) {
	n := newNotifier()
	defer n.close()
	p := &noticePipeline{AppendPipeline: &stuckPipeline{closed: make(chan struct{})}, n: n, id: "f1"}
	n.piped("f1", p, nil)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		p.notice(&raft.AppendEntriesRequest{Term: 1, PrevLogEntry: 5, PrevLogTerm: 1, LeaderCommitIndex: 5})
	}()
	for p.mu.TryLock() { // until the notice holds the pipeline
		p.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the notice it should end")
	}
	<-sent
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers["f1"].pipe != nil {
		t.Fatal("the notifier still sends through a closed pipeline")
	}
}

// A follower's notice goroutine runs while there are notices to send and
// ends after noticeIdle without one: a follower removed from the
// cluster, or an idle cluster, holds no goroutine.
func TestNoticeGoroutineEndsWhenIdle(t *testing.T) {
	defer func(d time.Duration) { noticeIdle = d }(noticeIdle)
	noticeIdle = 50 * time.Millisecond
	n := newNotifier()
	defer n.close()
	running := func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.peers["f1"].running
	}
	p := &noticePipeline{AppendPipeline: &stuckPipeline{closed: make(chan struct{})}, n: n, id: "f1"}
	n.piped("f1", p, nil)
	if running() {
		t.Fatal("a follower's goroutine started before any notice was due")
	}
	for round := 0; round < 2; round++ {
		// Applied here, then sent to the follower through its pipeline
		// without the commit: a notice is due.
		n.appliedUpTo(uint64(10*round+10), 1)
		n.sent("f1", &raft.AppendEntriesRequest{Term: 1, PrevLogEntry: uint64(10 * round), Entries: make([]*raft.Log, 10)}, p)
		if !running() {
			t.Fatalf("round %d: no goroutine for a notice due", round)
		}
		deadline := time.Now().Add(5 * time.Second)
		for running() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the follower's goroutine outlived %s without a notice to send", round, noticeIdle)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Every goroutine ended: close does not wait.
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("a notice goroutine is still counted")
	}
}
