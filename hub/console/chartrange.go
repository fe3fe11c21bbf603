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

// latencyChart is the name of the chart of the routers' p99 latency.
const latencyChart = "p99 latency, ms (routers, last 15 min at most)"

// requestSeries turns the routers' per-second counts of an app into one
// series with two charts over buckets of 10 s (the instances' sampling
// interval): requests per second, averaged, and the p99 latency, read
// from the routers' latency histograms merged over the bucket (the upper
// bound of the bucket the 99th percentile falls in; the largest bound
// for the unbounded last one).
func requestSeries(secs []apitypes.TrafficSecond) apitypes.MetricSeries {
	const bucket = 10
	sums := map[int64]uint64{}
	hists := map[int64][]uint64{}
	var bounds []float64
	for _, s := range secs {
		t := s.Unix / bucket * bucket
		sums[t] += s.Requests
		if len(s.BoundsMs) == 0 || len(s.Latency) != len(s.BoundsMs)+1 {
			continue
		}
		if bounds == nil {
			bounds = s.BoundsMs
		} else if !slices.Equal(bounds, s.BoundsMs) {
			continue // another router's buckets: not merged
		}
		h := hists[t]
		if h == nil {
			h = make([]uint64, len(s.Latency))
			hists[t] = h
		}
		for i, n := range s.Latency {
			h[i] += n
		}
	}
	pts := make([]apitypes.MetricPoint, 0, len(sums))
	for t, n := range sums {
		pts = append(pts, apitypes.MetricPoint{T: t, V: float64(n) / bucket})
	}
	lat := make([]apitypes.MetricPoint, 0, len(hists))
	for t, h := range hists {
		if v, ok := p99(h, bounds); ok {
			lat = append(lat, apitypes.MetricPoint{T: t, V: v})
		}
	}
	byTime := func(a, b apitypes.MetricPoint) int { return cmp.Compare(a.T, b.T) }
	slices.SortFunc(pts, byTime)
	slices.SortFunc(lat, byTime)
	m := map[string][]apitypes.MetricPoint{requestsChart: pts}
	if len(lat) > 0 {
		m[latencyChart] = lat
	}
	return apitypes.MetricSeries{ID: "routers", Metrics: m}
}

// p99 is the upper bound of the histogram bucket that holds the 99th
// percentile; false for an empty histogram.
func p99(h []uint64, bounds []float64) (float64, bool) {
	var total uint64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0, false
	}
	// The rank of the 99th percentile, rounded up: ceil(0.99 × total).
	rank := (total*99 + 99) / 100
	var seen uint64
	for i, n := range h {
		seen += n
		if seen >= rank {
			return bounds[min(i, len(bounds)-1)], true
		}
	}
	return bounds[len(bounds)-1], true
}
