package scheduler

import (
	"errors"
	"fmt"
	"slices"
)

// AppKey names an app: apps are unique by name within their tenant.
type AppKey struct {
	Tenant string
	Name   string
}

// String returns "tenant/name".
func (k AppKey) String() string { return k.Tenant + "/" + k.Name }

// Spread values: what an app's instances are spread over before packing.
const (
	SpreadHost       = "host" // the default, also spelled ""
	SpreadZone       = "zone"
	SpreadDatacenter = "datacenter"
)

// App is the desired state of one app, as far as placement goes.
type App struct {
	Key     AppKey
	Version int // the current version; only its instances count
	CPU     int // millicores per instance
	Memory  int // MB per instance
	Count   int // desired instances of the current version
	// Pools are tried in order: the first with capacity wins (unless
	// Spread is zone or datacenter, which weighs all of them together).
	// Empty: the pools of AllowedPools, in their order.
	Pools []string
	// AllowedPools are the pools the tenant may use. Empty: all pools
	// (then an app without Pools uses every pool, by name). Pools and
	// FailoverPools outside it are skipped and reported as pending
	// reasons.
	AllowedPools []string
	Spread       string // "", SpreadHost, SpreadZone or SpreadDatacenter
	Constraints  []Constraint
	// FailoverPools are tried in order once Pools have no ready capacity.
	FailoverPools []string
	// Workload is what the app brings (WorkloadImage or WorkloadCommand):
	// only hosts with a driver that runs it take its instances. "": any
	// host.
	Workload string
}

// Validate reports what is wrong with a.
func (a *App) Validate() error {
	var errs []error
	if a.Key.Tenant == "" || a.Key.Name == "" {
		errs = append(errs, fmt.Errorf("app %q: empty tenant or name", a.Key))
	}
	if a.Version < 1 {
		errs = append(errs, fmt.Errorf("version %d: versions start at 1", a.Version))
	}
	if a.CPU < 0 || a.Memory < 0 || a.Count < 0 {
		errs = append(errs, errors.New("negative cpu, memory or count"))
	}
	switch a.Spread {
	case "", SpreadHost, SpreadZone, SpreadDatacenter:
	default:
		errs = append(errs, fmt.Errorf("spread %q: want host, zone or datacenter", a.Spread))
	}
	switch a.Workload {
	case "", WorkloadImage, WorkloadCommand:
	default:
		errs = append(errs, fmt.Errorf("workload %q: want image or command", a.Workload))
	}
	for i := range a.Constraints {
		if err := a.Constraints[i].Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Copy returns a deep copy.
func (a *App) Copy() *App {
	c := *a
	c.Pools = slices.Clone(a.Pools)
	c.AllowedPools = slices.Clone(a.AllowedPools)
	c.FailoverPools = slices.Clone(a.FailoverPools)
	c.Constraints = make([]Constraint, len(a.Constraints))
	for i, k := range a.Constraints {
		k.Values = slices.Clone(k.Values)
		c.Constraints[i] = k
	}
	if a.Constraints == nil {
		c.Constraints = nil
	}
	return &c
}

// spreadLevel maps Spread to the domain it spreads over: 0 none (hosts
// only), 1 zone, 2 datacenter.
func (a *App) spreadLevel() int {
	switch a.Spread {
	case SpreadZone:
		return 1
	case SpreadDatacenter:
		return 2
	}
	return 0
}
