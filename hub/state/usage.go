package state

import (
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Metering tables. Times in them are Unix seconds: usage counts whole
// seconds (every start and end is truncated to its second), so that sums
// are exact and every node computes the same integers.
const (
	// TableUsage holds closed hours: one row per tenant, app and hour,
	// written once by CloseHour and kept after the app or tenant is gone.
	TableUsage = "usage"
	// TableUsageSegments holds the intervals instances counted and stopped
	// counting in hours that are not closed yet.
	TableUsageSegments = "usage_segments"
	// TableUsageCounters holds the routers' and the log path's counts of
	// hours that are not closed yet, per tenant, app and hour.
	TableUsageCounters = "usage_counters"
	// TableUsageBatches remembers, per hub node, the last counter batch
	// applied, so that a retried batch is not counted twice.
	TableUsageBatches = "usage_batches"
	// TableUsageHosts remembers, per agent host, the last usage report
	// applied, so that an agent's report that reaches the FSM again
	// (resent to another hub node after the first one committed it, its
	// acknowledgement lost) is not counted twice.
	TableUsageHosts = "usage_hosts"
	// tableMeter is the singleton row saying which hours are closed.
	tableMeter = "meter"
)

// Message types of metering.
const (
	UsageCountersType MessageType = 42
	CloseHourType     MessageType = 43
)

// UsageRow is what one app of one tenant used in [Start, End) (Unix
// seconds), in the integer units of billing: seconds, millicore-seconds,
// MB-seconds, requests and bytes.
type UsageRow struct {
	Tenant string
	App    string
	Start  int64
	End    int64

	InstanceSeconds int64
	CPUMilliSeconds int64
	MemoryMBSeconds int64
	Requests        int64
	EgressBytes     int64
	LogBytes        int64
	// Final is set on closed hours (every stored row); rows computed for
	// open hours have it false.
	Final bool
}

func (u *UsageRow) add(o *UsageRow) {
	u.InstanceSeconds += o.InstanceSeconds
	u.CPUMilliSeconds += o.CPUMilliSeconds
	u.MemoryMBSeconds += o.MemoryMBSeconds
	u.Requests += o.Requests
	u.EgressBytes += o.EgressBytes
	u.LogBytes += o.LogBytes
}

func (u *UsageRow) zero() bool {
	return u.InstanceSeconds == 0 && u.CPUMilliSeconds == 0 && u.MemoryMBSeconds == 0 && u.Requests == 0 && u.EgressBytes == 0 && u.LogBytes == 0
}

// UsageSegment is one interval [Start, End) an instance counted, kept
// until the hours it covers are closed (an instance record may be gone by
// then). Index and Seq (the Raft index and order within the command that
// ended it) identify it.
type UsageSegment struct {
	Index    uint64
	Seq      int
	Instance string
	Tenant   string
	App      string
	CPU      int // millicores
	Memory   int // MB
	Start    int64
	End      int64
}

// UsageCounter is a count summed per tenant, app and hour (Start, the
// hour's first second as the counting node saw it) until its hour closes.
type UsageCounter struct {
	Tenant      string
	App         string
	Start       int64
	Requests    int64
	EgressBytes int64
	LogBytes    int64
}

// UsageBatch is the last counter batch applied from one hub node.
type UsageBatch struct {
	Node string
	Seq  uint64
}

// UsageHost is the last usage report applied from one agent host.
type UsageHost struct {
	Host string
	Seq  uint64
}

// meterEntry is the singleton row of metering: every hour that ends at or
// before ClosedThrough (Unix seconds; 0: none yet) is closed.
type meterEntry struct {
	ID            string // always "meter"
	ClosedThrough int64
	// HourSeconds is the length of the hours closed so far (3600 in
	// production).
	HourSeconds int64
}

const meterID = "meter"

// UsageCountersRequest adds one hub node's batch of counts. Batches of a
// node carry increasing Seq; a batch whose Seq is not above the last one
// applied from that node is a retry and changes nothing. Reports are the
// agents' own reports the node received, each applied once per (Host,
// Seq): one whose Seq is not above the last applied from its host
// changes nothing, whichever node proposed it. Counts for an hour that is
// closed already count in the first open hour.
type UsageCountersRequest struct {
	Node    string
	Seq     uint64
	Counts  []UsageCount
	Reports []UsageReport `json:",omitempty"`
	Time    time.Time
}

// UsageReport is one agent's report of counts: Seq increases per host.
type UsageReport struct {
	Host   string
	Seq    uint64
	Counts []UsageCount
}

// UsageCount is one app's counts in the hour starting at Start.
type UsageCount struct {
	Tenant, App string
	Start       time.Time
	Requests    int64
	EgressBytes int64
	LogBytes    int64
}

// CloseHourRequest closes the hour [From, To): the FSM sums the usage of
// every app in it from its own state (segments, running instances,
// counters) and writes it as final rows. Hours close in order: From must
// be where the last close ended (the first close: not after anything
// metered); a close of an hour closed already changes nothing.
type CloseHourRequest struct {
	From, To time.Time
	Time     time.Time
}

func usageSchemas() map[string]*memdb.TableSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	i64 := func(field string) memdb.Indexer { return &memdb.IntFieldIndex{Field: field} }
	return map[string]*memdb.TableSchema{
		TableUsage: {Name: TableUsage, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{str("Tenant"), str("App"), i64("Start")}}},
			"tenant": {Name: "tenant", Indexer: str("Tenant")},
		}},
		TableUsageSegments: {Name: TableUsageSegments, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.UintFieldIndex{Field: "Index"}, &memdb.IntFieldIndex{Field: "Seq"}}}},
		}},
		TableUsageCounters: {Name: TableUsageCounters, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{str("Tenant"), str("App"), i64("Start")}}},
		}},
		TableUsageBatches: {Name: TableUsageBatches, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("Node")},
		}},
		TableUsageHosts: {Name: TableUsageHosts, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("Host")},
		}},
		TableBillingTenants: billingTenantSchema(),
		tableMeter: {Name: tableMeter, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
		}},
	}
}

// secs truncates t to its second, as Unix seconds.
func secs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// counts reports whether an instance is metered: desired to run and
// reported running.
func counts(i *Instance) bool {
	return i != nil && i.Desired == DesiredRun && i.State == InstanceRunning
}

// MeterState says how far hours are closed (closedThrough, Unix seconds,
// 0 for none) and, before the first close, the earliest second anything
// was metered from (0: nothing; not computed once an hour is closed),
// which is where the first close starts.
func (s *Snapshot) MeterState() (closedThrough, earliest int64, err error) {
	m, err := first[meterEntry](s, nil, tableMeter, "id", meterID)
	if err != nil {
		return 0, 0, err
	}
	if m != nil && m.ClosedThrough != 0 {
		return m.ClosedThrough, 0, nil
	}
	earliest, err = s.earliestMetered()
	return 0, earliest, err
}

// earliestMetered is where the first close starts: the earliest start
// of a segment, a running instance's count or a counter (0: nothing
// metered).
func (s *Snapshot) earliestMetered() (int64, error) {
	t, err := s.earliestCounted()
	if err != nil {
		return 0, err
	}
	cs, err := list[UsageCounter](s, nil, TableUsageCounters, "id")
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		if t == 0 || c.Start < t {
			t = c.Start
		}
	}
	return t, nil
}

// UsageBatchSeq returns the Seq of the last counter batch applied from
// node (0: none).
func (s *Snapshot) UsageBatchSeq(node string) (uint64, error) {
	b, err := first[UsageBatch](s, nil, TableUsageBatches, "id", node)
	if err != nil || b == nil {
		return 0, err
	}
	return b.Seq, nil
}

// UsageHostSeq returns the Seq of the last usage report applied from an
// agent host (0: none).
func (s *Snapshot) UsageHostSeq(host string) (uint64, error) {
	h, err := first[UsageHost](s, nil, TableUsageHosts, "id", host)
	if err != nil || h == nil {
		return 0, err
	}
	return h.Seq, nil
}

// ClosedUsage returns the closed rows of a tenant ("" for every tenant)
// whose hour starts in [from, to) (Unix seconds), sorted by tenant, app
// and hour.
func (s *Snapshot) ClosedUsage(ws memdb.WatchSet, tenant string, from, to int64) ([]*UsageRow, error) {
	var rows []*UsageRow
	var err error
	if tenant == "" {
		rows, err = list[UsageRow](s, ws, TableUsage, "id")
	} else {
		rows, err = list[UsageRow](s, ws, TableUsage, "tenant", tenant)
	}
	if err != nil {
		return nil, err
	}
	out := rows[:0:0]
	for _, r := range rows {
		if r.Start >= from && r.Start < to {
			out = append(out, r)
		}
	}
	sortRows(out)
	return out, nil
}

// HasUsage reports whether a tenant has any closed or open usage (so a
// deleted tenant's usage can still be read).
func (s *Snapshot) HasUsage(tenant string) (bool, error) {
	if r, err := s.txn.First(TableUsage, "tenant", tenant); err != nil || r != nil {
		return r != nil, err
	}
	cs, err := list[UsageCounter](s, nil, TableUsageCounters, "id_prefix", tenant)
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if c.Tenant == tenant {
			return true, nil
		}
	}
	segs, err := list[UsageSegment](s, nil, TableUsageSegments, "id")
	if err != nil {
		return false, err
	}
	for _, g := range segs {
		if g.Tenant == tenant {
			return true, nil
		}
	}
	return false, nil
}

// OpenUsage computes the usage of the hours that are not closed yet, from
// the hour where the next close starts up to the hour that holds now (Unix
// seconds), hours of hour seconds: rows per tenant ("" for every tenant),
// app and hour, not final, without the empty ones. Running instances
// count up to now.
func (s *Snapshot) OpenUsage(tenant string, now, hour int64) ([]*UsageRow, error) {
	if hour <= 0 {
		return nil, fmt.Errorf("hour length %d s", hour)
	}
	closed, earliest, err := s.MeterState()
	if err != nil {
		return nil, err
	}
	start := closed
	if start == 0 {
		if earliest == 0 {
			return nil, nil
		}
		start = floorTo(earliest, hour)
	}
	if now < start {
		return nil, nil
	}
	end := start + ((now-start)/hour+1)*hour // through the hour that holds now
	rows, err := s.accrue(tenant, start, end, now, hour)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// accrue sums usage over the hours of [start, end) (start a whole number
// of hours before end): segments and running instances (up to now)
// split at hour boundaries, counters in their hour, and counters of hours
// before start (closed already, or before the first close) in the first
// hour. It is the one computation of both CloseHour and open reads.
func (s *Snapshot) accrue(tenant string, start, end, now, hour int64) ([]*UsageRow, error) {
	type key struct {
		tenant, app string
		start       int64
	}
	rows := map[key]*UsageRow{}
	row := func(t, a string, h int64) *UsageRow {
		k := key{t, a, h}
		r := rows[k]
		if r == nil {
			r = &UsageRow{Tenant: t, App: a, Start: h, End: h + hour}
			rows[k] = r
		}
		return r
	}
	spread := func(t, a string, cpu, mem int, from, to int64) {
		from, to = max(from, start), min(to, end)
		for from < to {
			h := start + (from-start)/hour*hour
			e := min(to, h+hour)
			d := e - from
			r := row(t, a, h)
			r.InstanceSeconds += d
			r.CPUMilliSeconds += d * int64(cpu)
			r.MemoryMBSeconds += d * int64(mem)
			from = e
		}
	}
	segs, err := list[UsageSegment](s, nil, TableUsageSegments, "id")
	if err != nil {
		return nil, err
	}
	for _, g := range segs {
		if tenant == "" || g.Tenant == tenant {
			spread(g.Tenant, g.App, g.CPU, g.Memory, g.Start, min(g.End, now))
		}
	}
	var is []*Instance
	if tenant == "" {
		is, err = s.Instances(nil)
	} else {
		is, err = s.tenantInstances(tenant)
	}
	if err != nil {
		return nil, err
	}
	for _, i := range is {
		if i.MeteredSince != 0 && (tenant == "" || i.Tenant == tenant) {
			spread(i.Tenant, i.App, i.CPU, i.Memory, i.MeteredSince, now)
		}
	}
	var cs []*UsageCounter
	if tenant == "" {
		cs, err = list[UsageCounter](s, nil, TableUsageCounters, "id")
	} else {
		cs, err = list[UsageCounter](s, nil, TableUsageCounters, "id_prefix", tenant)
	}
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if (tenant != "" && c.Tenant != tenant) || c.Start >= end {
			continue
		}
		h := start
		if c.Start > start {
			h = start + (c.Start-start)/hour*hour
		}
		r := row(c.Tenant, c.App, h)
		r.Requests += c.Requests
		r.EgressBytes += c.EgressBytes
		r.LogBytes += c.LogBytes
	}
	out := make([]*UsageRow, 0, len(rows))
	for _, r := range rows {
		if !r.zero() {
			out = append(out, r)
		}
	}
	sortRows(out)
	return out, nil
}

func sortRows(rows []*UsageRow) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.App != b.App {
			return a.App < b.App
		}
		return a.Start < b.Start
	})
}

// floorTo rounds t down to a multiple of hour (t >= 0).
func floorTo(t, hour int64) int64 { return t - t%hour }
