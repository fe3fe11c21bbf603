package hub

import (
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/gateway"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// meteredAccess hands routers' reports to the traffic relay and counts
// their requests and response bytes for metering, for apps that exist.
type meteredAccess struct {
	traffic gateway.AccessSink
	counter *billing.Counter
	state   *state.Store
}

func (a meteredAccess) Report(from pki.AgentIdentity, s *wire.AccessStats) {
	a.traffic.Report(from, s)
	snap := a.state.Snapshot()
	known := map[string]bool{}
	for _, x := range s.Seconds {
		tenant, app, ok := strings.Cut(x.App, "/")
		if !ok || (x.Requests == 0 && x.BytesOut == 0) {
			continue
		}
		ok, seen := known[x.App]
		if !seen {
			found, err := snap.App(nil, tenant, app)
			ok = err == nil && found != nil
			known[x.App] = ok
		}
		if ok {
			a.counter.Add(tenant, app, time.Unix(x.Unix, 0), int64(x.Requests), int64(x.BytesOut), 0)
		}
	}
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
