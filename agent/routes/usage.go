package routes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/agent/router"
	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Usage reports. What the router counted for metering (requests and
// response bytes per app and metered hour) is kept by the agent until the
// hub says it is committed through Raft, so that no count is lost when
// the hub node the agent reports to dies, or the connection drops, before
// it commits; and none counts twice, since the hub counts each report's
// (host, seq) once.
//
// The ledger holds the counts not in a report yet (open) and at most one
// report: sent, not acknowledged. A report's counts are fixed once it has
// its seq, so every copy the hub may commit is the same. A report is sent
// once per session (each new session, to any hub node, sends it again)
// and again after resendAfter without an ack. Once acked, the open counts
// become the next report, with the next seq.
//
// On disk: DataDir/usage.json, replaced atomically when a report is made
// (before it is sent: a seq is never reused for other counts) and each
// second the counts changed, so an agent restart loses at most the
// router's last second. The first seq of a ledger without a file is the
// clock's Unix nanoseconds, above any a previous file of that host used.
//
// Bounded: at most maxUsageKeys (app, hour) counts are open. Past that,
// the oldest hour's counts are moved into the next hour: the hub counts
// counts of an hour it closed already in the first open hour anyway, so a
// move changes which hour counts them (only that of late counts), never
// how many.

// maxUsageKeys bounds the open counts (and so one report).
const maxUsageKeys = 4096

// resendAfter is how long a report waits for its ack before it is sent
// again on the same connection.
const resendAfter = 30 * time.Second

// usageFile is the ledger's file in the data dir.
const usageFile = "usage.json"

type usageKey struct {
	app  string
	hour int64
}

type usageSums struct{ requests, egress uint64 }

// ledger keeps usage counts until the hub commits them.
type ledger struct {
	path string // "": memory only

	mu       sync.Mutex
	hour     int64 // seconds; the hub's metered hour
	seq      uint64
	open     map[usageKey]*usageSums
	inflight *wire.UsageReport
	dirty    bool
}

// ledgerFile is the ledger on disk.
type ledgerFile struct {
	Seq      uint64        `json:"seq"`
	Inflight *ledgerReport `json:"inflight,omitempty"`
	Open     []ledgerCount `json:"open,omitempty"`
}

type ledgerReport struct {
	Seq    uint64        `json:"seq"`
	Counts []ledgerCount `json:"counts"`
}

type ledgerCount struct {
	App      string `json:"app"`
	Hour     int64  `json:"hour"`
	Requests uint64 `json:"requests,omitempty"`
	Egress   uint64 `json:"egress_bytes,omitempty"`
}

// openLedger loads the ledger kept in dir ("" keeps it in memory only).
func openLedger(dir string) (*ledger, error) {
	l := &ledger{hour: 3600, open: map[usageKey]*usageSums{}, seq: uint64(max(time.Now().UnixNano(), 0))}
	if dir == "" {
		return l, nil
	}
	l.path = dir + string(os.PathSeparator) + usageFile
	b, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("usage ledger: %w", err)
	}
	var f ledgerFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("usage ledger %s: %w", l.path, err)
	}
	l.seq = f.Seq
	if r := f.Inflight; r != nil {
		l.inflight = &wire.UsageReport{Seq: r.Seq}
		for _, c := range r.Counts {
			l.inflight.Counts = append(l.inflight.Counts, &wire.UsageCount{App: c.App, HourUnix: c.Hour, Requests: c.Requests, EgressBytes: c.Egress})
		}
	}
	for _, c := range f.Open {
		l.addLocked(c.App, c.Hour, c.Requests, c.Egress)
	}
	return l, nil
}

// setHour sets the metered hour the hub told (seconds; 0: one hour).
func (l *ledger) setHour(secs int64) {
	if secs <= 0 {
		secs = 3600
	}
	l.mu.Lock()
	l.hour = secs
	l.mu.Unlock()
}

// add counts the router's finished seconds.
func (l *ledger) add(secs []router.AppSecond) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range secs {
		if s.Requests == 0 && s.BytesOut == 0 {
			continue
		}
		l.addLocked(s.App, s.Unix-mod(s.Unix, l.hour), s.Requests, s.BytesOut)
	}
}

func (l *ledger) addLocked(app string, hour int64, requests, egress uint64) {
	k := usageKey{app, hour}
	x := l.open[k]
	if x == nil {
		if len(l.open) >= maxUsageKeys {
			l.foldOldest()
		}
		x = &usageSums{}
		l.open[k] = x
	}
	x.requests += requests
	x.egress += egress
	l.dirty = true
}

// foldOldest moves the counts of the oldest open hour into the next one
// (with one hour open, the keys are apps, which the bound does not cut).
func (l *ledger) foldOldest() {
	hours := map[int64]bool{}
	for k := range l.open {
		hours[k.hour] = true
	}
	if len(hours) < 2 {
		return
	}
	sorted := make([]int64, 0, len(hours))
	for h := range hours {
		sorted = append(sorted, h)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	oldest, next := sorted[0], sorted[1]
	for k, x := range l.open {
		if k.hour != oldest {
			continue
		}
		delete(l.open, k)
		n := usageKey{k.app, next}
		if y := l.open[n]; y != nil {
			y.requests += x.requests
			y.egress += x.egress
		} else {
			l.open[n] = x
		}
	}
}

// report returns the report to send: the one in flight, else a new one
// of the open counts (nil when there are none). It is saved first; one
// that cannot be saved is not to be sent (a restart would reuse its seq
// for other counts, which the hub would drop as a duplicate).
func (l *ledger) report() (*wire.UsageReport, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight != nil {
		return l.inflight, l.saveLocked()
	}
	if len(l.open) == 0 {
		return nil, nil
	}
	keys := make([]usageKey, 0, len(l.open))
	for k := range l.open {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].hour != keys[j].hour {
			return keys[i].hour < keys[j].hour
		}
		return keys[i].app < keys[j].app
	})
	l.seq++
	r := &wire.UsageReport{Seq: l.seq}
	for _, k := range keys {
		x := l.open[k]
		r.Counts = append(r.Counts, &wire.UsageCount{App: k.app, HourUnix: k.hour, Requests: x.requests, EgressBytes: x.egress})
	}
	l.open = map[usageKey]*usageSums{}
	l.inflight = r
	l.dirty = true
	return r, l.saveLocked()
}

// acked forgets report seq: the hub committed it.
func (l *ledger) acked(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight != nil && l.inflight.Seq == seq {
		l.inflight = nil
		l.dirty = true
	}
}

// unacked returns the requests the ledger holds: open or in a report not
// yet acknowledged.
func (l *ledger) unacked() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for _, x := range l.open {
		n += x.requests
	}
	if l.inflight != nil {
		for _, c := range l.inflight.Counts {
			n += c.Requests
		}
	}
	return n
}

// save writes the ledger if it changed since the last save.
func (l *ledger) save() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.saveLocked()
}

func (l *ledger) saveLocked() error {
	if l.path == "" || !l.dirty {
		return nil
	}
	f := ledgerFile{Seq: l.seq}
	if r := l.inflight; r != nil {
		f.Inflight = &ledgerReport{Seq: r.Seq}
		for _, c := range r.Counts {
			f.Inflight.Counts = append(f.Inflight.Counts, ledgerCount{App: c.App, Hour: c.HourUnix, Requests: c.Requests, Egress: c.EgressBytes})
		}
	}
	for k, x := range l.open {
		f.Open = append(f.Open, ledgerCount{App: k.app, Hour: k.hour, Requests: x.requests, Egress: x.egress})
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(l.path, b, 0o600); err != nil {
		return fmt.Errorf("usage ledger: %w", err)
	}
	l.dirty = false
	return nil
}

// mod is a non-negative remainder.
func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}
