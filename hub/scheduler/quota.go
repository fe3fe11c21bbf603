package scheduler

import (
	"errors"
	"fmt"
	"strings"
)

// ErrQuotaExceeded is matched (with errors.Is) by the error CheckQuota
// returns; the API answers it with 422.
var ErrQuotaExceeded = errors.New("quota exceeded")

// Quota caps what one tenant may reserve. A zero field is unlimited.
type Quota struct {
	Instances int
	CPU       int // millicores
	Memory    int // MB
}

// Usage is what a tenant reserves, or what a request adds to it.
type Usage struct {
	Instances int
	CPU       int // millicores
	Memory    int // MB
}

// QuotaError lists the limits a request would exceed.
type QuotaError struct {
	Over []Excess
}

// Excess is one limit a request would exceed.
type Excess struct {
	Resource string // "instances", "cpu" or "memory"
	Want     int    // usage after the request
	Limit    int
}

// Error reads like "quota exceeded: cpu 2500m of 2000m".
func (e *QuotaError) Error() string {
	parts := make([]string, len(e.Over))
	for i, x := range e.Over {
		switch x.Resource {
		case "cpu":
			parts[i] = fmt.Sprintf("cpu %dm of %dm", x.Want, x.Limit)
		case "memory":
			parts[i] = fmt.Sprintf("memory %d MB of %d MB", x.Want, x.Limit)
		default:
			parts[i] = fmt.Sprintf("%s %d of %d", x.Resource, x.Want, x.Limit)
		}
	}
	return "quota exceeded: " + strings.Join(parts, ", ")
}

// Is makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

// CheckQuota reports whether a tenant using usage may add req under q. It
// returns nil or a *QuotaError. Only what a request adds is checked: a
// request that shrinks a resource passes even when the tenant is already
// over a lowered quota, so tenants can always scale down.
func CheckQuota(q Quota, usage, req Usage) error {
	var e QuotaError
	check := func(resource string, limit, used, add int) {
		if limit > 0 && add > 0 && used+add > limit {
			e.Over = append(e.Over, Excess{Resource: resource, Want: used + add, Limit: limit})
		}
	}
	check("instances", q.Instances, usage.Instances, req.Instances)
	check("cpu", q.CPU, usage.CPU, req.CPU)
	check("memory", q.Memory, usage.Memory, req.Memory)
	if len(e.Over) > 0 {
		return &e
	}
	return nil
}
