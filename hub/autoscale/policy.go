package autoscale

import (
	"fmt"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/cron"
)

// scheduleLookback is how far back a schedule's last firing is looked
// for: a week and a day covers every weekly schedule.
const scheduleLookback = 8 * 24 * time.Hour

// PolicyAt returns the policy as it holds at now: the bounds of the
// schedule that fired last (within a week and a day), else the policy's.
// A schedule that does not parse (the API refuses those) is skipped.
func PolicyAt(a *state.Autoscale, now time.Time) Policy {
	p := Policy{Min: a.Min, Max: a.Max, CPU: a.CPU, Memory: a.Memory, QPS: a.QPS, Window: a.Window.D(), ScaleDownDelay: a.ScaleDownDelay.D(), Bounds: "policy"}
	if p.Window <= 0 {
		p.Window = 10 * time.Second
	}
	if p.ScaleDownDelay < 0 {
		p.ScaleDownDelay = 0
	}
	var latest time.Time
	for _, s := range a.Schedules {
		c, err := cron.Parse(s.Cron)
		if err != nil {
			continue
		}
		loc := time.UTC
		if s.Timezone != "" {
			if loc, err = time.LoadLocation(s.Timezone); err != nil {
				continue
			}
		}
		at, ok := c.Prev(now.In(loc), scheduleLookback)
		if !ok || !at.After(latest) {
			continue
		}
		latest = at
		p.Min, p.Max = s.Min, a.Max
		if s.Max > 0 {
			p.Max = s.Max
		}
		p.Max = max(p.Max, p.Min)
		p.Bounds = fmt.Sprintf("schedule %q@%s since %s", s.Cron, loc, at.Format("2006-01-02 15:04"))
	}
	return p
}
