package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Commit notices: a follower learns that an entry is committed from the
// leader's next AppendEntries, whose LeaderCommitIndex says so.
// hashicorp/raft sends one when new entries follow, or when CommitTimeout
// passes without any; its heartbeats carry no commit index. So after the
// last write of a burst, followers learn of its commit only a
// CommitTimeout later: the delay of a read after a write on a follower, of
// a write forwarded by a follower (it answers once its own store holds
// the write), and of the assignments and route tables its agents are
// sent. A short CommitTimeout bounds that delay but has the leader send
// each follower an empty AppendEntries every few milliseconds when idle.
//
// The notifier removes the trade. Once the leader has applied entry i, it
// sends a follower to which Raft's pipeline has sent i, and which has not
// been sent a commit index of at least i (by Raft itself, in the
// meantime), the AppendEntries Raft would: empty, its previous entry i
// with i's term, its commit index i, with the term and header of Raft's
// own last request to that follower. A leader may send that at any time;
// i is committed, so it is in every later leader's log, and a follower
// commits min(i, its last index) = i. The notice goes through Raft's own
// pipeline to that follower, after the entries Raft sent on it: the
// follower reads them in order, so it holds i when the notice comes, and
// Raft's pipeline reads the answer like any other (an empty success
// changes nothing of Raft's view of the follower). A notice on a
// connection of its own could overtake the entries still queued on the
// pipeline's, and be refused with a warning.
//
// CommitTimeout then only bounds how soon a follower that was behind
// learns of commits, and can be long enough that an idle cluster is idle.

// noticeDelay is how long the notifier leaves Raft to send the commit
// index itself (with the next entries) before it sends a notice.
const noticeDelay = time.Millisecond

type notifier struct {
	raft atomic.Pointer[raft.Raft] // set once Raft is made
	stop chan struct{}
	wg   sync.WaitGroup

	mu          sync.Mutex
	applied     uint64 // the last entry the local FSM applied
	appliedTerm uint64
	peers       map[raft.ServerID]*noticePeer
	closed      bool
}

// noticePeer is what the notifier knows of one follower, from Raft's
// requests to it.
type noticePeer struct {
	id     raft.ServerID
	header raft.RPCHeader
	term   uint64
	leader []byte
	// commit is the highest commit index the follower was sent.
	commit uint64
	// pipe is Raft's pipeline to the follower, nil when Raft replicates
	// to it by single requests (it is behind); sent is the last entry
	// sent through pipe.
	pipe *noticePipeline
	sent uint64
	wake chan struct{}
	// running says a goroutine sends p's notices (run): started by the
	// first poke, it ends after noticeIdle without one, so a follower
	// removed from the cluster, or an idle cluster, holds none.
	running bool
}

// noticeIdle is how long a follower's notice goroutine waits for work
// before it ends.
var noticeIdle = 10 * time.Second

func newNotifier() *notifier {
	return &notifier{stop: make(chan struct{}), peers: map[raft.ServerID]*noticePeer{}}
}

func (n *notifier) isLeader() bool {
	r := n.raft.Load()
	return r != nil && r.State() == raft.Leader
}

// transport returns trans wrapped so that the notifier sees Raft's
// requests.
func (n *notifier) transport(trans *raft.NetworkTransport) raft.Transport {
	return &noticeTransport{NetworkTransport: trans, n: n}
}

// appliedUpTo is called by the FSM after it applies entries up to index
// (of term).
func (n *notifier) appliedUpTo(index, term uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if index <= n.applied {
		return
	}
	n.applied, n.appliedTerm = index, term
	if len(n.peers) == 0 || !n.isLeader() {
		return
	}
	for _, p := range n.peers {
		if p.commit < index && p.pipe != nil {
			n.poke(p)
		}
	}
}

// poke asks for a notice to p, starting its goroutine if none runs;
// n.mu is held.
func (n *notifier) poke(p *noticePeer) {
	if n.closed {
		return
	}
	if !p.running {
		p.running = true
		n.wg.Add(1)
		go n.run(p)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// sent records a request Raft sent to id, through pipe or (nil) alone.
func (n *notifier) sent(id raft.ServerID, req *raft.AppendEntriesRequest, pipe *noticePipeline) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peerLocked(id)
	if p == nil {
		return
	}
	if req.Term > p.term {
		// A new term (this node leads again): what the follower was
		// told under another leader no longer counts.
		p.commit, p.sent = 0, 0
	}
	if req.Term >= p.term {
		p.header, p.term, p.leader = req.RPCHeader, req.Term, req.Leader
	}
	p.commit = max(p.commit, req.LeaderCommitIndex)
	if pipe != nil && pipe == p.pipe && req.Term == p.term {
		p.sent = max(p.sent, req.PrevLogEntry+uint64(len(req.Entries)))
		if p.sent >= n.applied && p.commit < n.applied {
			n.poke(p)
		}
	}
}

// piped records Raft's new pipeline to id (nil: it closed pipe).
func (n *notifier) piped(id raft.ServerID, pipe, closed *noticePipeline) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peerLocked(id)
	if p == nil {
		return
	}
	if pipe != nil {
		p.pipe, p.sent = pipe, 0
	} else if p.pipe == closed {
		p.pipe, p.sent = nil, 0
	}
}

// peerLocked returns the follower's record, made on first sight.
func (n *notifier) peerLocked(id raft.ServerID) *noticePeer {
	if n.closed {
		return nil
	}
	p := n.peers[id]
	if p == nil {
		p = &noticePeer{id: id, wake: make(chan struct{}, 1)}
		n.peers[id] = p
	}
	return p
}

// run sends p's notices, one at a time, until noticeIdle passes without
// one asked for.
func (n *notifier) run(p *noticePeer) {
	defer n.wg.Done()
	t := time.NewTimer(noticeIdle)
	defer t.Stop()
	for {
		t.Reset(noticeIdle)
		select {
		case <-p.wake:
		case <-t.C:
			n.mu.Lock()
			if len(p.wake) == 0 {
				p.running = false
				n.mu.Unlock()
				return
			}
			n.mu.Unlock()
			<-p.wake
		case <-n.stop:
			return
		}
		t.Reset(noticeDelay)
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		if !n.isLeader() {
			continue
		}
		n.mu.Lock()
		i := n.applied
		req := &raft.AppendEntriesRequest{RPCHeader: p.header, Term: p.term, Leader: p.leader,
			PrevLogEntry: i, PrevLogTerm: n.appliedTerm, LeaderCommitIndex: i}
		pipe := p.pipe
		due := pipe != nil && p.term > 0 && i > 0 && p.commit < i && p.sent >= i
		if due {
			p.commit = i
		}
		n.mu.Unlock()
		if due {
			pipe.notice(req)
		}
	}
}

// close stops the notices and waits, bounded, for one being sent.
func (n *notifier) close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	close(n.stop)
	n.mu.Unlock()
	waitBounded(&n.wg, 3*time.Second)
}

// noticeTransport is Raft's transport, with the notifier told of every
// AppendEntries. The rest (votes, snapshots, pre-votes, Close) is the
// NetworkTransport's own.
type noticeTransport struct {
	*raft.NetworkTransport
	n *notifier
}

// Raft enables pre-vote only with a transport that offers it.
var (
	_ raft.WithPreVote = (*noticeTransport)(nil)
	_ raft.WithClose   = (*noticeTransport)(nil)
)

func (t *noticeTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	t.n.sent(id, args, nil)
	return err
}

func (t *noticeTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	np := &noticePipeline{AppendPipeline: p, n: t.n, id: id}
	t.n.piped(id, np, nil)
	return np, nil
}

// noticePipeline is Raft's pipeline to one follower, shared by Raft and
// the notices one request at a time: a request's bytes and its place in
// the queue of answers Raft reads go together.
type noticePipeline struct {
	raft.AppendPipeline
	n  *notifier
	id raft.ServerID

	mu     sync.Mutex
	closed bool
}

func (p *noticePipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := p.AppendPipeline.AppendEntries(args, resp)
	if err == nil {
		p.n.sent(p.id, args, p)
	}
	return f, err
}

// notice sends req after what Raft has sent. Raft's pipeline reads its
// answer; a refusal (not expected) makes Raft start the pipeline over.
func (p *noticePipeline) notice(req *raft.AppendEntriesRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		_, _ = p.AppendPipeline.AppendEntries(req, new(raft.AppendEntriesResponse))
	}
}

// Close closes the pipeline first: a notice waiting for room in its
// queue (its answers no longer read, a follower gone silent) holds mu
// until the pipeline's end releases it.
func (p *noticePipeline) Close() error {
	err := p.AppendPipeline.Close()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.n.piped(p.id, nil, p)
	return err
}
