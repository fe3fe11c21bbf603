package console

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// chartRange is a time range the app page's charts can show, chosen with
// ?range= (links on the page, so it works without a script).
type chartRange struct {
	Key   string // the ?range= value
	Label string
	Span  time.Duration
	// Step thins the points of the longer ranges (the hub keeps one every
	// 10 s); zero asks for every point.
	Step time.Duration
}

// chartRanges are the ranges offered; defaultRange is the one without
// ?range=.
var chartRanges = []chartRange{
	{"15m", "15 min", 15 * time.Minute, 0},
	{"1h", "1 hour", time.Hour, 0},
	{"6h", "6 hours", 6 * time.Hour, time.Minute},
	{"24h", "24 hours", 24 * time.Hour, 5 * time.Minute},
}

const defaultRange = 1

// readChartRange reads ?range=. An unknown one is an error; the default
// range is returned with it so the page still shows something.
func readChartRange(r *http.Request) (chartRange, error) {
	k := r.URL.Query().Get("range")
	if k == "" {
		return chartRanges[defaultRange], nil
	}
	for _, cr := range chartRanges {
		if cr.Key == k {
			return cr, nil
		}
	}
	return chartRanges[defaultRange], fmt.Errorf("unknown range %q: choose 15m, 1h, 6h or 24h", k)
}

// query is the metrics read of this range, ending now.
func (cr chartRange) query(tenant string, now time.Time) *client.QueryOptions {
	q := url.Values{"from": {strconv.FormatInt(now.Add(-cr.Span).Unix(), 10)}, "to": {strconv.FormatInt(now.Unix(), 10)}}
	if cr.Step > 0 {
		q.Set("step", cr.Step.String())
	}
	return &client.QueryOptions{Tenant: tenant, Extra: q}
}

// statsSpan is the longest span the routers' per-second counts cover.
const statsSpan = 15 * time.Minute

// requestsChart is the name of the chart of routed requests.
const requestsChart = "requests per second (routers, last 15 min at most)"

// requestSeries turns the routers' per-second counts of an app into one
// series of requests per second, averaged over buckets of 10 s (the
// instances' sampling interval).
func requestSeries(secs []apitypes.TrafficSecond) apitypes.MetricSeries {
	const bucket = 10
	sums := map[int64]uint64{}
	for _, s := range secs {
		sums[s.Unix/bucket*bucket] += s.Requests
	}
	pts := make([]apitypes.MetricPoint, 0, len(sums))
	for t, n := range sums {
		pts = append(pts, apitypes.MetricPoint{T: t, V: float64(n) / bucket})
	}
	slices.SortFunc(pts, func(a, b apitypes.MetricPoint) int { return cmp.Compare(a.T, b.T) })
	return apitypes.MetricSeries{ID: "routers", Metrics: map[string][]apitypes.MetricPoint{requestsChart: pts}}
}
