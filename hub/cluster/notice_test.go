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
