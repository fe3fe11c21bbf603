package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// meterScratch is what one command's metering needs while it applies.
type meterScratch struct {
	now  time.Time // the command's time
	segs int       // segments this command wrote so far
}

// commandTime is the time a command carries, for the instance changes it
// makes (zero for commands that change no instance).
func commandTime(req any) time.Time {
	switch r := req.(type) {
	case *InstanceUpdateRequest:
		return r.Time
	case *PlanApplyRequest:
		return r.Time
	case *AppDeleteRequest:
		return r.Time
	case *HostStateRequest:
		return r.Time
	case *HostStatesRequest:
		return r.Time
	case *HostDeleteRequest:
		return r.Time
	}
	return time.Time{}
}

// meter keeps an instance's count as it changes from old (nil: new) to n
// (nil: dropped). An instance counts while it is desired to run and
// reported running; it starts counting at the command that makes it so
// (only a status report can), and when it stops counting (stopped,
// replaced, its app deleted, dropped) its interval is kept as a segment.
func (w *writer) meter(old, n *Instance) *Error {
	var since int64
	if old != nil {
		since = old.MeteredSince
	}
	if counts(n) {
		if since == 0 {
			since = secs(w.m.now)
		}
		n.MeteredSince = since
		return nil
	}
	if n != nil {
		n.MeteredSince = 0
	}
	if since == 0 {
		return nil
	}
	return w.addSegment(old, since, secs(w.m.now))
}

// hostLost stops the count of a host's instances when the hub marks the
// host down: they count again from their next running report.
func (w *writer) hostLost(host string) *Error {
	is, err := w.snap().HostInstances(nil, host)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, i := range is {
		if i.MeteredSince == 0 {
			continue
		}
		n := i.Copy()
		n.MeteredSince = 0
		// Status, not spec: the instance's modify index stays.
		if e := w.setInstance(i, n); e != nil {
			return e
		}
		if e := w.addSegment(i, i.MeteredSince, secs(w.m.now)); e != nil {
			return e
		}
	}
	return nil
}

// addSegment keeps [start, end) of instance i, less what closed hours
// hold already (a command stamped before the last close).
func (w *writer) addSegment(i *Instance, start, end int64) *Error {
	m, e := w.meterRow()
	if e != nil {
		return e
	}
	start = max(start, m.ClosedThrough)
	if end <= start {
		return nil
	}
	g := &UsageSegment{Index: w.index, Seq: w.m.segs, Instance: i.ID, Tenant: i.Tenant, App: i.App, CPU: i.CPU, Memory: i.Memory, Start: start, End: end}
	w.m.segs++
	return w.insert(TableUsageSegments, g)
}

func (w *writer) meterRow() (*meterEntry, *Error) {
	obj, err := w.txn.First(tableMeter, "id", meterID)
	if err != nil {
		return nil, Errorf(KindInternal, "%v", err)
	}
	if obj == nil {
		return &meterEntry{ID: meterID}, nil
	}
	return obj.(*meterEntry), nil
}

// maxUsageCounts bounds one batch.
const maxUsageCounts = 100_000

func (w *writer) usageCounters(r *UsageCountersRequest) *Error {
	if r.Node == "" || r.Seq == 0 {
		return &Error{Kind: KindInvalid, Field: "node", Msg: "a counter batch needs its node and a sequence number above 0"}
	}
	n := len(r.Counts)
	for _, rep := range r.Reports {
		if rep.Host == "" || rep.Seq == 0 {
			return &Error{Kind: KindInvalid, Field: "reports", Msg: "an agent's usage report needs its host and a sequence number above 0"}
		}
		n += len(rep.Counts)
	}
	if n > maxUsageCounts {
		return &Error{Kind: KindInvalid, Field: "counts", Msg: fmt.Sprintf("%d counts in one batch (at most %d)", n, maxUsageCounts)}
	}
	if e := checkCounts(r.Counts); e != nil {
		return e
	}
	for _, rep := range r.Reports {
		if e := checkCounts(rep.Counts); e != nil {
			return e
		}
	}
	old, err := w.txn.First(TableUsageBatches, "id", r.Node)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old != nil && r.Seq <= old.(*UsageBatch).Seq {
		return nil // a retry of a batch applied already
	}
	if e := w.addCounts(r.Counts); e != nil {
		return e
	}
	for _, rep := range r.Reports {
		last, err := w.txn.First(TableUsageHosts, "id", rep.Host)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if last != nil && rep.Seq <= last.(*UsageHost).Seq {
			continue // applied already, through this node or another
		}
		if e := w.addCounts(rep.Counts); e != nil {
			return e
		}
		if e := w.insert(TableUsageHosts, &UsageHost{Host: rep.Host, Seq: rep.Seq}); e != nil {
			return e
		}
	}
	return w.insert(TableUsageBatches, &UsageBatch{Node: r.Node, Seq: r.Seq})
}

func checkCounts(cs []UsageCount) *Error {
	for _, c := range cs {
		if c.Tenant == "" || c.App == "" || c.Start.IsZero() || c.Start.Unix() <= 0 {
			return &Error{Kind: KindInvalid, Field: "counts", Msg: "a count needs a tenant, an app and its hour"}
		}
		if c.Requests < 0 || c.EgressBytes < 0 || c.LogBytes < 0 {
			return &Error{Kind: KindInvalid, Field: "counts", Msg: fmt.Sprintf("negative count for %s/%s", c.Tenant, c.App)}
		}
	}
	return nil
}

// addCounts adds counts to their tenant's, app's and hour's counter.
func (w *writer) addCounts(cs []UsageCount) *Error {
	for _, c := range cs {
		start := secs(c.Start)
		obj, err := w.txn.First(TableUsageCounters, "id", c.Tenant, c.App, start)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		n := &UsageCounter{Tenant: c.Tenant, App: c.App, Start: start}
		if obj != nil {
			*n = *obj.(*UsageCounter)
		}
		n.Requests += c.Requests
		n.EgressBytes += c.EgressBytes
		n.LogBytes += c.LogBytes
		if e := w.insert(TableUsageCounters, n); e != nil {
			return e
		}
	}
	return nil
}

func (w *writer) closeHour(r *CloseHourRequest) *Error {
	if r.From.IsZero() || r.From.Nanosecond() != 0 || r.To.Nanosecond() != 0 || !r.To.After(r.From) || r.From.Unix() <= 0 {
		return &Error{Kind: KindInvalid, Field: "from", Msg: "an hour to close is [from, to) in whole seconds, from before to"}
	}
	from, to := r.From.Unix(), r.To.Unix()
	m, e := w.meterRow()
	if e != nil {
		return e
	}
	if m.ClosedThrough != 0 {
		if to <= m.ClosedThrough {
			return nil // closed already
		}
		if from != m.ClosedThrough {
			return Errorf(KindConflict, "hours close in order: the next one starts at %s", time.Unix(m.ClosedThrough, 0).UTC().Format(time.RFC3339))
		}
		if m.HourSeconds != 0 && to-from != m.HourSeconds {
			return &Error{Kind: KindInvalid, Field: "to", Msg: fmt.Sprintf("hours are %d s long", m.HourSeconds)}
		}
	} else if first, err := w.snap().earliestCounted(); err != nil {
		return Errorf(KindInternal, "%v", err)
	} else if first != 0 && first < from {
		return Errorf(KindConflict, "usage from %s is before the first hour to close", time.Unix(first, 0).UTC().Format(time.RFC3339))
	}
	rows, err := w.snap().accrue("", from, to, to, to-from)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, row := range rows {
		row.Final = true
		if old, err := w.txn.First(TableUsage, "id", row.Tenant, row.App, row.Start); err != nil {
			return Errorf(KindInternal, "%v", err)
		} else if old != nil {
			return Errorf(KindInternal, "usage of %s/%s at %d is closed already", row.Tenant, row.App, row.Start)
		}
		if e := w.insert(TableUsage, row); e != nil {
			return e
		}
	}
	// What the rows hold leaves the open tables.
	segs, err := list[UsageSegment](w.snap(), nil, TableUsageSegments, "id")
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, g := range segs {
		switch {
		case g.End <= to:
			if e := w.delete(TableUsageSegments, g); e != nil {
				return e
			}
		case g.Start < to:
			n := *g
			n.Start = to
			if e := w.insert(TableUsageSegments, &n); e != nil {
				return e
			}
		}
	}
	cs, err := list[UsageCounter](w.snap(), nil, TableUsageCounters, "id")
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, c := range cs {
		if c.Start < to {
			if e := w.delete(TableUsageCounters, c); e != nil {
				return e
			}
		}
	}
	return w.insert(tableMeter, &meterEntry{ID: meterID, ClosedThrough: to, HourSeconds: to - from})
}

// earliestCounted is the earliest start of a segment or a running
// instance's count (0: none).
func (s *Snapshot) earliestCounted() (int64, error) {
	var min int64
	see := func(t int64) {
		if t != 0 && (min == 0 || t < min) {
			min = t
		}
	}
	segs, err := list[UsageSegment](s, nil, TableUsageSegments, "id")
	if err != nil {
		return 0, err
	}
	for _, g := range segs {
		see(g.Start)
	}
	is, err := s.Instances(nil)
	if err != nil {
		return 0, err
	}
	for _, i := range is {
		see(i.MeteredSince)
	}
	return min, nil
}

// upgradeMetering gives the instances of a snapshot written before
// metering existed their counts: one running (desired to run, reported
// running, its host not down) counts from its last status change.
func upgradeMetering(txn *memdb.Txn) error {
	is, err := (&Snapshot{txn: txn}).Instances(nil)
	if err != nil {
		return err
	}
	var up [][2]*Instance
	for _, i := range is {
		if !counts(i) || i.MeteredSince != 0 {
			continue
		}
		h, err := txn.First(TableHosts, "id", i.Host)
		if err != nil {
			return err
		}
		if h != nil && h.(*Host).State == HostDown {
			continue
		}
		n := i.Copy()
		n.MeteredSince = secs(i.UpdatedAt)
		up = append(up, [2]*Instance{i, n})
	}
	for _, u := range up {
		// The restore's own rows (transaction 0), changed in place.
		if err := updateInstanceSets(txn, 0, 0, u[0], u[1]); err != nil {
			return err
		}
	}
	return nil
}
