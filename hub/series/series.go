// Package series keeps the recent metrics of instances and hosts on the hub
// leader, outside Raft (telemetry a new leader rebuilds from the next
// reports): one ring of points per series, 24 h at the agents' 10 s
// sampling interval, and behind it a coarse ring of 5-minute points (the
// last value of each 5 minutes: right for counters, a sample for gauges)
// for 7 days more; read back in steps.
package series

import (
	"sort"
	"sync"
	"time"
)

// Metric names (cAdvisor's, for instances; wharf_host_* for hosts).
const (
	CPUSeconds       = "container_cpu_usage_seconds_total"
	MemoryWorkingSet = "container_memory_working_set_bytes"
	MemoryUsage      = "container_memory_usage_bytes"
	NetRx            = "container_network_receive_bytes_total"
	NetTx            = "container_network_transmit_bytes_total"
	FsUsage          = "container_fs_usage_bytes"
)

// Capacity is how many points a series keeps: 24 h at 10 s.
const Capacity = 8640

// Point is one value at one time.
type Point struct {
	Unix  int64   `json:"t"` // seconds
	Value float64 `json:"v"`
}

// Owner describes whose series these are.
type Owner struct {
	Kind   string // "instance" or "host"
	ID     string
	App    string // "tenant/app" for instances
	Tenant string
	Host   string // the host an instance runs on
}

// Downsampled points: one per CoarseStep, CoarseCapacity of them (7 days).
const (
	CoarseStep     = 5 * time.Minute
	CoarseCapacity = 7 * 24 * 12
)

type ring struct {
	pts    []Point
	next   int
	full   bool
	size   int   // capacity
	coarse *ring // where evicted points are downsampled; nil for the coarse ring itself
}

func newRing() *ring { return &ring{size: Capacity, coarse: &ring{size: CoarseCapacity}} }

func (r *ring) add(p Point) {
	if n := r.len(); n > 0 && r.at(n-1).Unix >= p.Unix {
		return // out of order or repeated: keep the first
	}
	if len(r.pts) < r.size {
		r.pts = append(r.pts, p)
		return
	}
	if r.coarse != nil {
		r.coarse.fold(r.pts[r.next])
	}
	r.pts[r.next] = p
	r.next = (r.next + 1) % r.size
	r.full = true
}

// fold keeps p as its CoarseStep's point (the last one of the step wins).
func (r *ring) fold(p Point) {
	step := int64(CoarseStep / time.Second)
	if n := r.len(); n > 0 && r.at(n-1).Unix/step == p.Unix/step {
		i := n - 1
		if r.full {
			i = (r.next + n - 1) % r.size
		}
		r.pts[i] = p
		return
	}
	r.add(p)
}

func (r *ring) len() int { return len(r.pts) }

// at returns the i-th oldest point.
func (r *ring) at(i int) Point {
	if !r.full {
		return r.pts[i]
	}
	return r.pts[(r.next+i)%r.size]
}

type entry struct {
	owner   Owner
	metrics map[string]*ring
	last    time.Time // last report
}

// Store holds series by owner id.
type Store struct {
	mu      sync.Mutex
	owners  map[string]*entry // "instance/<id>" or "host/<id>"
	maxIdle time.Duration
}

// NewStore returns a store that forgets owners silent for maxIdle (zero:
// 24 h).
func NewStore(maxIdle time.Duration) *Store {
	if maxIdle <= 0 {
		maxIdle = 24 * time.Hour
	}
	return &Store{owners: map[string]*entry{}, maxIdle: maxIdle}
}

// Add records values of one owner at one time.
func (s *Store) Add(o Owner, at time.Time, values map[string]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := o.Kind + "/" + o.ID
	e := s.owners[k]
	if e == nil {
		e = &entry{metrics: map[string]*ring{}}
		s.owners[k] = e
	}
	e.owner, e.last = o, at
	for m, v := range values {
		r := e.metrics[m]
		if r == nil {
			r = newRing()
			e.metrics[m] = r
		}
		r.add(Point{Unix: at.Unix(), Value: v})
	}
	for key, x := range s.owners {
		if at.Sub(x.last) > s.maxIdle {
			delete(s.owners, key)
		}
	}
}

// Series is one owner's metrics over a range.
type Series struct {
	Owner   Owner              `json:"-"`
	ID      string             `json:"id"`
	Host    string             `json:"host,omitempty"`
	Metrics map[string][]Point `json:"metrics"`
}

// Query returns, for the owners that match, their points in [from, to]
// taken every step (the last point of each step; zero step: every point).
func (s *Store) Query(match func(Owner) bool, from, to time.Time, step time.Duration) []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Series
	for _, e := range s.owners {
		if !match(e.owner) {
			continue
		}
		sr := Series{Owner: e.owner, ID: e.owner.ID, Host: e.owner.Host, Metrics: map[string][]Point{}}
		for m, r := range e.metrics {
			var pts []Point
			all := make([]Point, 0, r.coarse.len()+r.len())
			for i := 0; i < r.coarse.len(); i++ {
				all = append(all, r.coarse.at(i))
			}
			for i := 0; i < r.len(); i++ {
				all = append(all, r.at(i))
			}
			for _, p := range all {
				if p.Unix < from.Unix() || p.Unix > to.Unix() {
					continue
				}
				if step > 0 && len(pts) > 0 && p.Unix/int64(step.Seconds()) == pts[len(pts)-1].Unix/int64(step.Seconds()) {
					pts[len(pts)-1] = p
					continue
				}
				pts = append(pts, p)
			}
			sr.Metrics[m] = pts
		}
		out = append(out, sr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Latest calls f with every owner's latest values.
func (s *Store) Latest(f func(o Owner, values map[string]float64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.owners {
		vals := map[string]float64{}
		for m, r := range e.metrics {
			if n := r.len(); n > 0 {
				vals[m] = r.at(n - 1).Value
			}
		}
		f(e.owner, vals)
	}
}
