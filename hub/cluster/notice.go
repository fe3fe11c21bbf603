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
// sends a follower that has acknowledged i, and has not been sent a
// commit index of at least i (by Raft itself, in the meantime), the
// AppendEntries Raft would: empty, its previous entry i with i's term, its
// commit index i, with the term and header of Raft's own last request to
// that follower. A leader may send that at any time; i is committed, so
// it is in every later leader's log, and a follower whose log differs at
// i refuses it and changes nothing. A follower commits min(i, its last
// index) = i. Raft's own replication is untouched: the notices go on
// connections of their own and their answers go nowhere else.
//
// CommitTimeout then only bounds how soon a follower that was behind
// learns of commits, and can be long enough that an idle cluster is idle.

// noticeDelay is how long the notifier leaves Raft to send the commit
// index itself (with the next entries) before it sends a notice.
const noticeDelay = time.Millisecond

type notifier struct {
	trans *raft.NetworkTransport
	raft  atomic.Pointer[raft.Raft] // set once Raft is made
	stop  chan struct{}
	wg    sync.WaitGroup

	mu          sync.Mutex
	applied     uint64 // the last entry the local FSM applied
	appliedTerm uint64
	peers       map[raft.ServerID]*noticePeer
	closed      bool
}

// noticePeer is what the notifier knows of one follower, from Raft's
// requests to it and their answers.
type noticePeer struct {
	id     raft.ServerID
	addr   raft.ServerAddress
	header raft.RPCHeader
	term   uint64
	leader []byte
	// commit is the highest commit index the follower was sent, match the
	// highest index it acknowledged holding.
	commit, match uint64
	wake          chan struct{}
}

func newNotifier() *notifier {
	return &notifier{stop: make(chan struct{}), peers: map[raft.ServerID]*noticePeer{}}
}

func (n *notifier) isLeader() bool {
	r := n.raft.Load()
	return r != nil && r.State() == raft.Leader
}

// transport returns trans wrapped so that the notifier sees Raft's
// requests and their answers.
func (n *notifier) transport(trans *raft.NetworkTransport) raft.Transport {
	n.trans = trans
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
		if p.commit < index {
			p.poke()
		}
	}
}

func (p *noticePeer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// sent records a request Raft sent to id and, when it was answered,
// the answer.
func (n *notifier) sent(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peerLocked(id, target)
	if p == nil {
		return
	}
	if req.Term > p.term {
		// A new term (this node leads again): what the follower held
		// and was told under another leader no longer counts.
		p.commit, p.match = 0, 0
	}
	if req.Term >= p.term {
		p.header, p.term, p.leader = req.RPCHeader, req.Term, req.Leader
	}
	p.commit = max(p.commit, req.LeaderCommitIndex)
	if resp != nil {
		n.answeredLocked(p, req, resp)
	}
}

// answered records the answer to a request sent through a pipeline.
func (n *notifier) answered(id raft.ServerID, target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.peerLocked(id, target); p != nil {
		n.answeredLocked(p, req, resp)
	}
}

func (n *notifier) answeredLocked(p *noticePeer, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if !resp.Success || resp.Term != req.Term || req.Term != p.term {
		return
	}
	if m := req.PrevLogEntry + uint64(len(req.Entries)); m > p.match {
		p.match = m
		if p.commit < n.applied && p.match > p.commit {
			p.poke()
		}
	}
}

// peerLocked returns the follower's record, made (with its goroutine) on
// first sight.
func (n *notifier) peerLocked(id raft.ServerID, target raft.ServerAddress) *noticePeer {
	if n.closed {
		return nil
	}
	p := n.peers[id]
	if p == nil {
		p = &noticePeer{id: id, wake: make(chan struct{}, 1)}
		n.peers[id] = p
		n.wg.Add(1)
		go n.run(p)
	}
	p.addr = target
	return p
}

// run sends p's notices, one at a time.
func (n *notifier) run(p *noticePeer) {
	defer n.wg.Done()
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-p.wake:
		case <-n.stop:
			return
		}
		t.Reset(noticeDelay)
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		n.mu.Lock()
		i, term := n.applied, n.appliedTerm
		req := raft.AppendEntriesRequest{RPCHeader: p.header, Term: p.term, Leader: p.leader,
			PrevLogEntry: i, PrevLogTerm: term, LeaderCommitIndex: i}
		addr, due := p.addr, p.term > 0 && i > 0 && p.commit < i && p.match >= i
		n.mu.Unlock()
		if !due || !n.isLeader() {
			continue
		}
		var resp raft.AppendEntriesResponse
		if err := n.trans.AppendEntries(p.id, addr, &req, &resp); err != nil || !resp.Success {
			continue // Raft's own requests carry the commit index in time
		}
		n.mu.Lock()
		p.commit = max(p.commit, i)
		n.mu.Unlock()
	}
}

// close stops the notices and waits, bounded, for one in flight.
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
// AppendEntries and its answer. The rest (votes, snapshots, pre-votes,
// Close) is the NetworkTransport's own.
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
	if err != nil {
		resp = nil
	}
	t.n.sent(id, target, args, resp)
	return err
}

func (t *noticeTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	np := &noticePipeline{AppendPipeline: p, n: t.n, id: id, target: target,
		out: make(chan raft.AppendFuture, 128), done: make(chan struct{})}
	go np.forward()
	return np, nil
}

// noticePipeline passes Raft's pipelined requests on, and their answers
// back through a channel of its own, telling the notifier of both.
type noticePipeline struct {
	raft.AppendPipeline
	n      *notifier
	id     raft.ServerID
	target raft.ServerAddress
	out    chan raft.AppendFuture
	done   chan struct{}
	once   sync.Once
}

func (p *noticePipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	f, err := p.AppendPipeline.AppendEntries(args, resp)
	if err == nil {
		p.n.sent(p.id, p.target, args, nil)
	}
	return f, err
}

func (p *noticePipeline) Consumer() <-chan raft.AppendFuture { return p.out }

func (p *noticePipeline) Close() error {
	p.once.Do(func() { close(p.done) })
	return p.AppendPipeline.Close()
}

func (p *noticePipeline) forward() {
	in := p.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			if f.Error() == nil {
				p.n.answered(p.id, p.target, f.Request(), f.Response())
			}
			select {
			case p.out <- f:
			case <-p.done:
				return
			}
		case <-p.done:
			return
		}
	}
}
