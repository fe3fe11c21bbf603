package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Logs: an agent ships its instances' lines to the hub node it is
// connected to (the gateway's logs stream). That node keeps them in its
// own store (hub/logstore, outside Raft), copies them to one other node of
// the Raft configuration, and only then acknowledges them: every line
// acknowledged is on two nodes. Each store drops duplicates by (instance,
// seq); readers ask every node and merge by time, dropping the copies.
const (
	rpcLogsReplicate = "logs-replicate"
	rpcLogsQuery     = "logs-query"
	// logsQueryTimeout bounds one node's answer to a read.
	logsQueryTimeout = 5 * time.Second
	// followPoll is how often a follow asks the nodes for new lines.
	followPoll = 250 * time.Millisecond
	// followRoundLimit bounds one node's answer in one follow round.
	followRoundLimit = 100_000
	// defaultLogLimit is a read's newest lines without ?limit.
	defaultLogLimit = 10_000
)

// logMetrics count this node's log intake.
type logMetrics struct {
	accepted, refused, replicated, replicaFailed atomic.Uint64
}

func (h *Hub) registerLogMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		counter("wharf_hub_log_lines_accepted_total", "Log lines this node's agents shipped and it acknowledged.", &h.logCounts.accepted),
		counter("wharf_hub_log_lines_refused_total", "Log lines refused (not an instance of the agent, or invalid).", &h.logCounts.refused),
		counter("wharf_hub_log_batches_replicated_total", "Log batches copied to a second node before the ack.", &h.logCounts.replicated),
		counter("wharf_hub_log_replication_failures_total", "Log batches no second node took (the agent resends them).", &h.logCounts.replicaFailed),
		gauge("wharf_hub_log_store_bytes", "Bytes of this node's log store.", func() float64 { return float64(h.logs.Stats().Bytes) }),
	)
}

// errNoReplica refuses a batch no second node could take: the agent keeps
// it and sends it again.
var errNoReplica = errors.New("no other hub node took a copy")

// acceptLogs is the gateway's callback: one agent batch, acknowledged when
// it returns nil.
func (h *Hub) acceptLogs(ctx context.Context, from pki.AgentIdentity, b *wire.LogBatch) error {
	recs, drops := h.logRecords(from, b)
	if len(recs) > 0 {
		for i := range recs {
			recs[i].Primary = true // this node drains them
		}
		if _, err := h.logs.Append(recs); err != nil {
			return fmt.Errorf("keep logs: %w", err)
		}
		if err := h.replicateLogs(ctx, recs); err != nil {
			h.logCounts.replicaFailed.Add(1)
			return err
		}
		h.logCounts.accepted.Add(uint64(len(recs)))
	}
	for _, d := range drops {
		go h.recordEvent(context.WithoutCancel(ctx), d)
	}
	return nil
}

// logRecords turns a batch into records, keeping only lines of instances
// the agent may speak for: an instance placed on its host, or (an instance
// the state no longer holds) one of an app that exists. The rest are
// dropped with a warning: resending would not make them valid.
func (h *Hub) logRecords(from pki.AgentIdentity, b *wire.LogBatch) ([]logstore.Record, []state.Event) {
	snap := h.store.Snapshot()
	type src struct {
		tenant, app, instance string
		ok                    bool
	}
	srcs := make([]src, len(b.Sources))
	for i, s := range b.Sources {
		t, a, in, ok := splitSource(s)
		if ok {
			if inst, _ := snap.Instance(nil, in); inst != nil {
				ok = inst.Host == from.HostID && inst.Tenant == t && inst.App == a
			} else {
				app, _ := snap.App(nil, t, a)
				ok = app != nil
			}
		}
		if !ok {
			h.log.Warn("log lines refused: not an instance of this agent", "host", from.HostID, "source", s)
			for _, l := range b.Lines {
				if int(l.Source) == i {
					h.logCounts.refused.Add(1)
				}
			}
		}
		srcs[i] = src{t, a, in, ok}
	}
	recs := make([]logstore.Record, 0, len(b.Lines))
	for _, l := range b.Lines {
		if int(l.Source) >= len(srcs) || !srcs[l.Source].ok || l.Seq == 0 {
			continue
		}
		s := srcs[l.Source]
		r := logstore.Record{Time: time.Unix(0, l.UnixNano), Tenant: s.tenant, App: s.app, Instance: s.instance,
			Stream: l.Stream, Seq: l.Seq, Line: string(l.Text), Partial: l.Partial}
		if err := r.Validate(); err != nil {
			// Resending would not make it valid: dropped, said so.
			h.log.Warn("log line refused", "host", from.HostID, "source", b.Sources[l.Source], "seq", l.Seq, "err", err)
			h.logCounts.refused.Add(1)
			continue
		}
		recs = append(recs, r)
	}
	var drops []state.Event
	for _, d := range b.Drops {
		if int(d.Source) >= len(srcs) || !srcs[d.Source].ok || d.Count == 0 {
			continue
		}
		s := srcs[d.Source]
		drops = append(drops, state.Event{Type: "logs.dropped", Subject: s.tenant + "/" + s.app,
			Message: fmt.Sprintf("agent %s dropped %d log lines of instance %s (seq %d-%d): its buffer was full while the hub was unreachable",
				from.HostID, d.Count, s.instance, d.First, d.Last)})
	}
	return recs, drops
}

// tenantLogRetention reads a tenant's log retention from its quota (zero
// fields: the node's defaults).
func tenantLogRetention(store *state.Store) func(string) logstore.Retention {
	return func(tenant string) logstore.Retention {
		t, _ := store.Snapshot().Tenant(nil, tenant)
		if t == nil {
			return logstore.Retention{}
		}
		return logstore.Retention{MaxBytes: t.Quota.LogBytes, MaxAge: time.Duration(t.Quota.LogAge)}
	}
}

// splitSource splits "tenant/app/instance".
func splitSource(s string) (tenant, app, instance string, ok bool) {
	tenant, rest, ok1 := strings.Cut(s, "/")
	app, instance, ok2 := strings.Cut(rest, "/")
	return tenant, app, instance, ok1 && ok2 && tenant != "" && app != "" && instance != "" && !strings.Contains(instance, "/")
}

// recordEvent commits an event through Raft (best effort, logged).
func (h *Hub) recordEvent(ctx context.Context, ev state.Event) {
	ev.Time = time.Now()
	msg, err := state.Encode(state.EventRecordType, &state.EventRecordRequest{Event: ev})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		_, err = h.cluster.Apply(ctx, msg)
	}
	if err != nil {
		h.log.Warn("record event", "type", ev.Type, "subject", ev.Subject, "err", err)
	}
}

// replicateLogs copies recs to one other server of the Raft
// configuration, trying each in turn. A single-server cluster has no
// other node to lose the lines to.
func (h *Hub) replicateLogs(ctx context.Context, recs []logstore.Record) error {
	self := h.cluster.RaftAddr()
	var peers []string
	for _, a := range h.cluster.Servers() {
		if a != self {
			peers = append(peers, a)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	// Peers gossip calls dead last: a cut-off one would hold every batch
	// for the call's timeout.
	dead := h.deadServers()
	slices.SortStableFunc(peers, func(a, b string) int { return cmp.Compare(btoi(dead[a]), btoi(dead[b])) })
	body, err := proto.Marshal(encodeRecords(recs))
	if err != nil {
		return err
	}
	// Start with a different peer per node so replicas spread.
	h.logPeer.mu.Lock()
	first := h.logPeer.next % len(peers)
	h.logPeer.mu.Unlock()
	var errs []error
	for i := range peers {
		p := peers[(first+i)%len(peers)]
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := h.cluster.CallNode(cctx, p, rpcLogsReplicate, body)
		cancel()
		if err == nil {
			h.logCounts.replicated.Add(1)
			h.logPeer.mu.Lock()
			h.logPeer.next = (first + i) % len(peers)
			h.logPeer.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %v", errNoReplica, errors.Join(errs...))
}

// deadServers returns the Raft addresses of the nodes gossip calls dead.
func (h *Hub) deadServers() map[string]bool {
	dead := map[string]bool{}
	for _, m := range h.cluster.Members() {
		if !m.Alive && m.RaftAddr != "" {
			dead[m.RaftAddr] = true
		}
	}
	return dead
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// logPeer remembers which peer took the last copy.
type logPeer struct {
	mu   sync.Mutex
	next int
}

// encodeRecords packs records as a LogBatch whose sources are
// "tenant/app/instance" (the replication format between nodes).
func encodeRecords(recs []logstore.Record) *wire.LogBatch {
	b := &wire.LogBatch{Lines: make([]*wire.LogLine, 0, len(recs))}
	index := map[string]uint32{}
	for _, r := range recs {
		s := r.Tenant + "/" + r.App + "/" + r.Instance
		i, ok := index[s]
		if !ok {
			i = uint32(len(b.Sources))
			index[s] = i
			b.Sources = append(b.Sources, s)
		}
		b.Lines = append(b.Lines, &wire.LogLine{Source: i, Stream: r.Stream, Seq: r.Seq, UnixNano: r.Time.UnixNano(), Text: []byte(r.Line), Partial: r.Partial})
	}
	return b
}

func (h *Hub) logsReplicateHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var b wire.LogBatch
		if err := proto.Unmarshal(body, &b); err != nil {
			http.Error(w, "logs: "+err.Error(), http.StatusBadRequest)
			return
		}
		recs := make([]logstore.Record, 0, len(b.Lines))
		for _, l := range b.Lines {
			if int(l.Source) >= len(b.Sources) {
				http.Error(w, "logs: bad source index", http.StatusBadRequest)
				return
			}
			t, a, in, ok := splitSource(b.Sources[l.Source])
			if !ok {
				http.Error(w, "logs: bad source", http.StatusBadRequest)
				return
			}
			recs = append(recs, logstore.Record{Time: time.Unix(0, l.UnixNano), Tenant: t, App: a, Instance: in, Stream: l.Stream, Seq: l.Seq, Line: string(l.Text), Partial: l.Partial})
		}
		if _, err := h.logs.Append(recs); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, logstore.ErrInvalid) {
				code = http.StatusBadRequest
			}
			http.Error(w, err.Error(), code)
		}
	})
}

// logsQuery is a read of one node's store.
type logsQuery struct {
	Tenant   string `json:"tenant"`
	App      string `json:"app"`
	Since    int64  `json:"since,omitempty"` // Unix ns
	Until    int64  `json:"until,omitempty"`
	Instance string `json:"instance,omitempty"`
	Grep     string `json:"grep,omitempty"`
	AfterPos uint64 `json:"after_pos,omitempty"`
	Limit    int    `json:"limit,omitempty"`
}

type logsAnswer struct {
	Lines []apitypes.LogLine `json:"lines"`
	Pos   uint64             `json:"pos"`
	// Truncated: older matching lines were left out to keep the answer
	// within logsAnswerBytes.
	Truncated bool `json:"truncated,omitempty"`
}

// logsAnswerBytes bounds one node's answer (the internal RPC carries at
// most 16 MiB): the newest lines that fit.
const logsAnswerBytes = 12 << 20

func (q logsQuery) store() logstore.Query {
	s := logstore.Query{Tenant: q.Tenant, App: q.App, Instance: q.Instance, Grep: q.Grep, AfterPos: q.AfterPos, Limit: q.Limit}
	if q.Since != 0 {
		s.Since = time.Unix(0, q.Since)
	}
	if q.Until != 0 {
		s.Until = time.Unix(0, q.Until)
	}
	return s
}

func (h *Hub) logsQueryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q logsQuery
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		recs, pos, err := h.logs.Query(q.store())
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, logstore.ErrInvalid) {
				code = http.StatusBadRequest
			}
			http.Error(w, err.Error(), code)
			return
		}
		// Newest first until the budget.
		first, size := len(recs), 0
		for first > 0 {
			n := jsonSize(recs[first-1].Line) + 150 // the other fields
			if size+n > logsAnswerBytes && first < len(recs) {
				break
			}
			size += n
			first--
		}
		ans := logsAnswer{Lines: make([]apitypes.LogLine, 0, len(recs)-first), Pos: pos, Truncated: first > 0}
		for _, r := range recs[first:] {
			ans.Lines = append(ans.Lines, logLine(r))
		}
		json.NewEncoder(w).Encode(ans)
	})
}

func logLine(r logstore.Record) apitypes.LogLine {
	return apitypes.LogLine{Time: r.Time.UTC(), Instance: r.Instance, Stream: r.Stream, Seq: r.Seq, Line: r.Line, Partial: r.Partial}
}

// queryNodes asks every server for q (with its own AfterPos) and returns
// the answers by address; nodes that do not answer are left out (every
// acknowledged line is on two nodes).
func (h *Hub) queryNodes(ctx context.Context, q logsQuery, after map[string]uint64) map[string]logsAnswer {
	dead := h.deadServers()
	var servers []string
	for _, s := range h.cluster.Servers() {
		if !dead[s] { // every line is on two nodes; a dead one would only hold the read up
			servers = append(servers, s)
		}
	}
	out := make(map[string]logsAnswer, len(servers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := q
			q.AfterPos = after[addr]
			body, _ := json.Marshal(q)
			cctx, cancel := context.WithTimeout(ctx, logsQueryTimeout)
			defer cancel()
			b, err := h.cluster.CallNode(cctx, addr, rpcLogsQuery, body)
			var ans logsAnswer
			if err == nil {
				err = json.Unmarshal(b, &ans)
			}
			if err != nil {
				h.log.Debug("logs query", "node", addr, "err", err)
				return
			}
			mu.Lock()
			out[addr] = ans
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// truncated reports whether a node left older lines out of its answer.
func truncated(answers map[string]logsAnswer) bool {
	for _, a := range answers {
		if a.Truncated {
			return true
		}
	}
	return false
}

// mergeLogs merges the nodes' answers in time order and drops copies.
func mergeLogs(answers map[string]logsAnswer) []apitypes.LogLine {
	var all []apitypes.LogLine
	for _, a := range answers {
		all = append(all, a.Lines...)
	}
	slices.SortFunc(all, func(a, b apitypes.LogLine) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Seq, b.Seq))
	})
	type key struct {
		instance string
		seq      uint64
	}
	seen := make(map[key]bool, len(all))
	out := all[:0]
	for _, l := range all {
		k := key{l.Instance, l.Seq}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return out
}

// appLogs answers GET /v1/apps/{name}/logs: the retained lines merged
// across the nodes, then (follow) new ones as they arrive, until ctx ends.
func (h *Hub) appLogs(ctx context.Context, q apitypes.LogQuery, emit func([]apitypes.LogLine, bool) error) error {
	lq := logsQuery{Tenant: q.Tenant, App: q.App, Instance: q.Instance, Grep: q.Grep, Limit: q.Limit}
	if !q.Since.IsZero() {
		lq.Since = q.Since.UnixNano()
	}
	answers := h.queryNodes(ctx, lq, nil)
	if len(answers) == 0 {
		return errors.New("no hub node answered")
	}
	lines := mergeLogs(answers)
	limit := q.Limit
	if limit == 0 {
		limit = defaultLogLimit
	}
	if len(lines) > limit {
		lines = lines[len(lines)-limit:]
	}
	if err := emit(lines, truncated(answers)); err != nil || !q.Follow {
		return err
	}
	// Follow: per node, lines appended after its position; per instance,
	// only seqs above the highest sent (a copy on another node, or a
	// resend after an agent switched nodes, is then dropped).
	pos := map[string]uint64{}
	for addr, a := range answers {
		pos[addr] = a.Pos
	}
	high := map[string]uint64{}
	for _, l := range lines {
		high[l.Instance] = max(high[l.Instance], l.Seq)
	}
	lq.Limit = followRoundLimit
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		answers := h.queryNodes(ctx, lq, pos)
		for addr, a := range answers {
			pos[addr] = max(pos[addr], a.Pos)
		}
		var fresh []apitypes.LogLine
		for _, l := range mergeLogs(answers) {
			if l.Seq > high[l.Instance] {
				fresh = append(fresh, l)
			}
		}
		// Seqs of one instance ascend in time, so a line is sent only
		// after the lower seqs of its instance this round.
		for _, l := range fresh {
			high[l.Instance] = max(high[l.Instance], l.Seq)
		}
		if len(fresh) == 0 {
			continue
		}
		if err := emit(fresh, truncated(answers)); err != nil {
			return err
		}
	}
}

// jsonSize bounds the length of s encoded as a JSON string by
// encoding/json: escapes take up to 6 bytes, invalid UTF-8 bytes 6 each.
func jsonSize(s string) int {
	if utf8.ValidString(s) {
		n := 2
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			case c == '"' || c == '\\':
				n += 2
			default:
				n++
			}
		}
		return n + 6*strings.Count(s, "\u2028") + 6*strings.Count(s, "\u2029")
	}
	return 6*len(s) + 2
}
