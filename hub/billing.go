package hub

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// meteredUsage commits agents' usage reports for metering: the counts of
// apps that exist (anything else an agent sends is dropped), each in its
// metered hour.
type meteredUsage struct {
	counter *billing.Counter
	state   *state.Store
}

func (u meteredUsage) Commit(ctx context.Context, from pki.AgentIdentity, r *wire.UsageReport) error {
	snap := u.state.Snapshot()
	known := map[string]bool{}
	var counts []state.UsageCount
	for _, c := range r.Counts {
		tenant, app, ok := strings.Cut(c.App, "/")
		if !ok || tenant == "" || app == "" || c.HourUnix <= 0 || (c.Requests == 0 && c.EgressBytes == 0) ||
			c.Requests > math.MaxInt64 || c.EgressBytes > math.MaxInt64 {
			continue
		}
		ok, seen := known[c.App]
		if !seen {
			found, err := snap.App(nil, tenant, app)
			ok = err == nil && found != nil
			known[c.App] = ok
		}
		if ok {
			counts = append(counts, state.UsageCount{Tenant: tenant, App: app, Start: time.Unix(c.HourUnix, 0).UTC(),
				Requests: int64(c.Requests), EgressBytes: int64(c.EgressBytes)})
		}
	}
	if len(counts) == 0 {
		return nil // nothing to count: the agent may forget it
	}
	err := u.counter.Report(ctx, from.HostID, r.Seq, counts)
	if state.KindOf(err) == state.KindInvalid {
		return nil // refused for good (logged by the counter): sending it again would not help
	}
	return err
}

// meteredLogs counts the bytes of the log lines the log path stored.
type meteredLogs struct{ counter *billing.Counter }

func (m meteredLogs) LogBytes(tenant, app string, n int64) {
	m.counter.Add(tenant, app, time.Time{}, 0, 0, n)
}

// meterHour is the metered hour: one hour unless a test's Tuning shortens it.
func meterHour(t *Tuning) time.Duration {
	if t == nil {
		return 0
	}
	return t.MeterHour
}
