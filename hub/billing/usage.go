// Package billing meters what tenants use and prices it: usage derived from
// committed state (instance lifetimes, routers' request and egress counts,
// log bytes stored), hours closed once through Raft by the leader, plans
// with prices as decimals, daily bills and monthly invoices. Money is never
// a float: prices are decimal strings, amounts integer minor units.
package billing

import "time"

// Usage is what one app of one tenant used in [From, To), in integer
// units so that sums are exact. A closed hour is Final; the open hour (and
// any period that reaches into it) is computed on read and is not.
type Usage struct {
	Tenant string
	App    string
	From   time.Time
	To     time.Time

	InstanceSeconds int64
	// CPUMilliSeconds is reserved CPU: millicores × seconds (1000 of them
	// make one core-second).
	CPUMilliSeconds int64
	// MemoryMBSeconds is reserved memory: MB × seconds (1024 MB make one GB).
	MemoryMBSeconds int64
	Requests        int64
	EgressBytes     int64
	LogBytes        int64

	Final bool
}

// Add adds o's quantities to u (the period and names are u's).
func (u *Usage) Add(o Usage) {
	u.InstanceSeconds += o.InstanceSeconds
	u.CPUMilliSeconds += o.CPUMilliSeconds
	u.MemoryMBSeconds += o.MemoryMBSeconds
	u.Requests += o.Requests
	u.EgressBytes += o.EgressBytes
	u.LogBytes += o.LogBytes
}
