package logs

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wharf-platform/wharf/hub/cluster"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

const (
	// queryTimeout bounds one node's answer to a read.
	queryTimeout = 5 * time.Second
	// followPoll is how often a follow asks the nodes for new lines.
	followPoll = 250 * time.Millisecond
	// followRoundLimit bounds one node's answer in one follow round.
	followRoundLimit = 100_000
	// defaultLimit is a read's newest lines without ?limit.
	defaultLimit = 10_000
	// answerBytes bounds one node's answer (the internal RPC carries at
	// most 16 MiB): the newest lines that fit.
	answerBytes = 12 << 20
)

// query is a read of one node's store.
type query struct {
	Tenant   string `json:"tenant"`
	App      string `json:"app"`
	Since    int64  `json:"since,omitempty"` // Unix ns
	Until    int64  `json:"until,omitempty"`
	Instance string `json:"instance,omitempty"`
	Grep     string `json:"grep,omitempty"`
	AfterPos uint64 `json:"after_pos,omitempty"`
	Limit    int    `json:"limit,omitempty"`
}

type answer struct {
	Lines []apitypes.LogLine `json:"lines"`
	Pos   uint64             `json:"pos"`
	// Truncated: older matching lines were left out to keep the answer
	// within answerBytes.
	Truncated bool `json:"truncated,omitempty"`
}

func (q query) store() logstore.Query {
	s := logstore.Query{Tenant: q.Tenant, App: q.App, Instance: q.Instance, Grep: q.Grep, AfterPos: q.AfterPos, Limit: q.Limit}
	if q.Since != 0 {
		s.Since = time.Unix(0, q.Since)
	}
	if q.Until != 0 {
		s.Until = time.Unix(0, q.Until)
	}
	return s
}

// serveQuery answers a read of this node's store.
func (s *Service) serveQuery(_ context.Context, q query) (answer, error) {
	recs, pos, err := s.cfg.Store.Query(q.store())
	if err != nil {
		if errors.Is(err, logstore.ErrInvalid) {
			err = cluster.BadRequest{Err: err}
		}
		return answer{}, err
	}
	// Newest first until the budget.
	first, size := len(recs), 0
	for first > 0 {
		n := jsonSize(recs[first-1].Line) + 150 // the other fields
		if size+n > answerBytes && first < len(recs) {
			break
		}
		size += n
		first--
	}
	ans := answer{Lines: make([]apitypes.LogLine, 0, len(recs)-first), Pos: pos, Truncated: first > 0}
	for _, r := range recs[first:] {
		ans.Lines = append(ans.Lines, logLine(r))
	}
	return ans, nil
}

func logLine(r logstore.Record) apitypes.LogLine {
	return apitypes.LogLine{Time: r.Time.UTC(), Instance: r.Instance, Stream: r.Stream, Seq: r.Seq, Line: r.Line, Partial: r.Partial}
}

// queryNodes asks every server for q (with its own AfterPos) and returns
// the answers by address; nodes that do not answer are left out (every
// acknowledged line is on two nodes).
func (s *Service) queryNodes(ctx context.Context, q query, after map[string]uint64) map[string]answer {
	dead := s.deadServers()
	var servers []string
	for _, a := range s.cfg.Peers.Servers() {
		if !dead[a] { // every line is on two nodes; a dead one would only hold the read up
			servers = append(servers, a)
		}
	}
	out := make(map[string]answer, len(servers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := q
			q.AfterPos = after[addr]
			cctx, cancel := context.WithTimeout(ctx, queryTimeout)
			defer cancel()
			ans, err := queryRPC.Call(cctx, s.cfg.Peers, addr, q)
			if err != nil {
				s.log.Debug("logs query", "node", addr, "err", err)
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
func truncated(answers map[string]answer) bool {
	for _, a := range answers {
		if a.Truncated {
			return true
		}
	}
	return false
}

// merge merges the nodes' answers in time order and drops copies.
func merge(answers map[string]answer) []apitypes.LogLine {
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

// Read answers GET /v1/apps/{name}/logs: the retained lines merged across
// the nodes, then (follow) new ones as they arrive, until ctx ends.
func (s *Service) Read(ctx context.Context, q apitypes.LogQuery, emit func([]apitypes.LogLine, bool) error) error {
	lq := query{Tenant: q.Tenant, App: q.App, Instance: q.Instance, Grep: q.Grep, Limit: q.Limit}
	if !q.Since.IsZero() {
		lq.Since = q.Since.UnixNano()
	}
	answers := s.queryNodes(ctx, lq, nil)
	if len(answers) == 0 {
		return errors.New("no hub node answered")
	}
	lines := merge(answers)
	limit := q.Limit
	if limit == 0 {
		limit = defaultLimit
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
		answers := s.queryNodes(ctx, lq, pos)
		for addr, a := range answers {
			pos[addr] = max(pos[addr], a.Pos)
		}
		var fresh []apitypes.LogLine
		for _, l := range merge(answers) {
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
