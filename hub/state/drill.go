package state

import (
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
)

// TableDrills holds failover drills (wharf drill): one pool or datacenter
// evacuated or cut off on purpose, and what the hub measured.
const TableDrills = "drills"

// Drill modes and states.
const (
	DrillCutoff   = "cutoff"   // the target's agents lose the hub: failover as if it were lost
	DrillEvacuate = "evacuate" // the target's hosts drain: every app moves off gracefully
	DrillRunning  = "running"
	DrillEnded    = "ended"
)

// Drill is one drill and its report. Durations count from StartedAt; -1
// means not reached (yet).
type Drill struct {
	ID         string
	Pool       string // target: a pool ...
	Datacenter string // ... or a datacenter
	Mode       string
	State      string
	Hosts      []string // the target's hosts when it started
	// Instances are the instances that ran on the target when it started,
	// "tenant/app" -> count.
	Instances      map[string]int
	StartedAt      time.Time
	EndedAt        time.Time
	DetectedMs     int64
	ScheduledMs    int64
	ReadyMs        int64
	RoutedMs       int64
	FailedRequests uint64
	Meta
}

// Copy returns a deep copy.
func (d *Drill) Copy() *Drill {
	c := *d
	c.Hosts = slices.Clone(d.Hosts)
	c.Instances = make(map[string]int, len(d.Instances))
	for k, v := range d.Instances {
		c.Instances[k] = v
	}
	return &c
}

func drillSchema() *memdb.TableSchema {
	return &memdb.TableSchema{Name: TableDrills, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
	}}
}

// Drills returns every drill, by id.
func (s *Snapshot) Drills(ws memdb.WatchSet) ([]*Drill, error) {
	return list[Drill](s, ws, TableDrills, "id")
}

// Drill returns a drill by id.
func (s *Snapshot) Drill(ws memdb.WatchSet, id string) (*Drill, error) {
	return first[Drill](s, ws, TableDrills, "id", id)
}

// CutOff reports whether a running cutoff drill holds host.
func (s *Snapshot) CutOff(ws memdb.WatchSet, host string) bool {
	ds, err := s.Drills(ws)
	if err != nil {
		return false
	}
	for _, d := range ds {
		if d.State == DrillRunning && d.Mode == DrillCutoff && slices.Contains(d.Hosts, host) {
			return true
		}
	}
	return false
}

// LostHosts returns the hosts whose instances count as lost: hosts that
// are down and hosts a running cutoff drill holds. Their instances are
// reported lost and not ready, and routers never send to them, until the
// host reports again.
func (s *Snapshot) LostHosts(ws memdb.WatchSet) (map[string]bool, error) {
	hosts, err := s.Hosts(ws)
	if err != nil {
		return nil, err
	}
	lost := map[string]bool{}
	for _, h := range hosts {
		if h.State == HostDown {
			lost[h.ID] = true
		}
	}
	ds, err := s.Drills(ws)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.State == DrillRunning && d.Mode == DrillCutoff {
			for _, h := range d.Hosts {
				lost[h] = true
			}
		}
	}
	return lost, nil
}

// DrillStartRequest starts a drill on a pool or a datacenter; refused
// while another drill runs, or when the target has no host.
type DrillStartRequest struct {
	ID, Pool, Datacenter, Mode string
	Time                       time.Time
}

// DrillReportRequest records what the leader measured.
type DrillReportRequest struct {
	ID                                         string
	DetectedMs, ScheduledMs, ReadyMs, RoutedMs int64
	FailedRequests                             uint64
}

// DrillEndRequest ends a drill: a cutoff target may reach the hub again,
// an evacuated one takes instances again (failback follows each app's
// policy).
type DrillEndRequest struct {
	ID   string
	Time time.Time
}

func (w *writer) drillStart(r *DrillStartRequest) *Error {
	if r.ID == "" || (r.Pool == "") == (r.Datacenter == "") {
		return &Error{Kind: KindInvalid, Field: "pool", Msg: "a drill needs an id and exactly one of pool or datacenter"}
	}
	if r.Mode != DrillCutoff && r.Mode != DrillEvacuate {
		return &Error{Kind: KindInvalid, Field: "mode", Msg: "mode must be cutoff or evacuate"}
	}
	snap := w.snap()
	ds, err := snap.Drills(nil)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, d := range ds {
		if d.ID == r.ID {
			return Errorf(KindConflict, "drill id %s is taken", r.ID)
		}
		if d.State == DrillRunning {
			return &Error{Kind: KindConflict, Msg: fmt.Sprintf("drill %s is still running; end it first", d.ID)}
		}
	}
	hosts, err := snap.Hosts(nil)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	d := &Drill{ID: r.ID, Pool: r.Pool, Datacenter: r.Datacenter, Mode: r.Mode, State: DrillRunning, Instances: map[string]int{},
		StartedAt: r.Time, DetectedMs: -1, ScheduledMs: -1, ReadyMs: -1, RoutedMs: -1}
	for _, h := range hosts {
		if (r.Pool != "" && h.Pool != r.Pool) || (r.Datacenter != "" && h.Datacenter != r.Datacenter) {
			continue
		}
		d.Hosts = append(d.Hosts, h.ID)
		is, err := snap.HostInstances(nil, h.ID)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		for _, i := range is {
			if i.Desired == DesiredRun {
				d.Instances[i.Tenant+"/"+i.App]++
			}
		}
		if r.Mode == DrillEvacuate && (h.State == HostReady || h.State == HostSuspect) {
			if e := w.hostState(&HostStateRequest{ID: h.ID, State: HostDraining, Disconnected: h.Disconnected, Reason: "drill " + r.ID, Time: r.Time}); e != nil {
				return e
			}
		}
	}
	if len(d.Hosts) == 0 {
		return &Error{Kind: KindRefused, Field: "pool", Msg: "the drill's target has no host"}
	}
	w.meta(&d.Meta, nil)
	if e := w.insert(TableDrills, d); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "drill.started", Subject: d.ID, Pool: r.Pool,
		Message: fmt.Sprintf("drill %s: %s of %s%s (%d hosts)", d.ID, r.Mode, r.Pool, r.Datacenter, len(d.Hosts))})
}

func (w *writer) drillReport(r *DrillReportRequest) *Error {
	d, err := w.snap().Drill(nil, r.ID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if d == nil {
		return Errorf(KindNotFound, "drill %s not found", r.ID)
	}
	n := d.Copy()
	n.DetectedMs, n.ScheduledMs, n.ReadyMs, n.RoutedMs, n.FailedRequests = r.DetectedMs, r.ScheduledMs, r.ReadyMs, r.RoutedMs, r.FailedRequests
	w.meta(&n.Meta, &d.Meta)
	return w.insert(TableDrills, n)
}

func (w *writer) drillEnd(r *DrillEndRequest) *Error {
	d, err := w.snap().Drill(nil, r.ID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if d == nil {
		return Errorf(KindNotFound, "drill %s not found", r.ID)
	}
	if d.State != DrillRunning {
		return Errorf(KindConflict, "drill %s has ended already", r.ID)
	}
	n := d.Copy()
	n.State, n.EndedAt = DrillEnded, r.Time
	if d.Mode == DrillEvacuate {
		for _, id := range d.Hosts {
			h, err := w.snap().Host(nil, id)
			if err != nil {
				return Errorf(KindInternal, "%v", err)
			}
			if h != nil && (h.State == HostDraining || h.State == HostDrained) {
				if e := w.hostState(&HostStateRequest{ID: id, State: HostReady, Disconnected: h.Disconnected, Reason: "drill " + d.ID + " ended", Time: r.Time}); e != nil {
					return e
				}
			}
		}
	}
	w.meta(&n.Meta, &d.Meta)
	if e := w.insert(TableDrills, n); e != nil {
		return e
	}
	return w.event(Event{Time: r.Time, Type: "drill.ended", Subject: d.ID, Pool: d.Pool, Message: fmt.Sprintf("drill %s ended", d.ID)})
}
