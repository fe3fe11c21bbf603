package console

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestChartRangeQuery(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		query, from, step string
		bad               bool
	}{
		{"", "1799996400", "", false},
		{"range=15m", "1799999100", "", false},
		{"range=1h", "1799996400", "", false},
		{"range=6h", "1799978400", "1m0s", false},
		{"range=24h", "1799913600", "5m0s", false},
		{"range=7d", "1799996400", "", true},
	} {
		t.Run(tc.query, func(t *testing.T) {
			cr, err := readChartRange(httptest.NewRequest("GET", "/ui/apps/a/b?"+tc.query, nil))
			if (err != nil) != tc.bad {
				t.Fatalf("err %v, want bad=%v", err, tc.bad)
			}
			q := cr.query("acme", now)
			if q.Tenant != "acme" || q.Extra.Get("from") != tc.from || q.Extra.Get("to") != "1800000000" || q.Extra.Get("step") != tc.step {
				t.Fatalf("query %+v, want from %s step %q", q, tc.from, tc.step)
			}
		})
	}
}

func TestRequestSeriesAveragesTenSecondBuckets(t *testing.T) {
	s := requestSeries([]apitypes.TrafficSecond{{Unix: 1005, Requests: 30}, {Unix: 1009, Requests: 10}, {Unix: 1000, Requests: 20}, {Unix: 1012, Requests: 5}})
	got := s.Metrics[requestsChart]
	want := []apitypes.MetricPoint{{T: 1000, V: 6}, {T: 1010, V: 0.5}}
	if !slices.Equal(got, want) {
		t.Fatalf("points %v, want %v", got, want)
	}
}

func TestChartsOverTheRangeShown(t *testing.T) {
	series := []apitypes.MetricSeries{{ID: "web-a", Metrics: map[string][]apitypes.MetricPoint{"cpu": {{T: 850, V: 1}, {T: 1000, V: 2}, {T: 1100, V: 2}}}}}
	cs := chartsOver(series, 400, 1000)
	// x: 400..1000 s over 600 units; the point after the range is clamped
	// to the right edge.
	if len(cs) != 1 || cs[0].From != 400 || cs[0].To != 1000 || cs[0].Lines[0].Points != "450.0,60.0 600.0,0.0 600.0,0.0" {
		t.Fatalf("charts %+v", cs)
	}
	if cs := chartsOver(series, 0, 0); cs[0].From != 850 || cs[0].To != 1100 {
		t.Fatalf("without a range the axis is the points' span: %+v", cs[0])
	}
}

func TestLatencySeriesIsTheP99OfMergedHistograms(t *testing.T) {
	b := []float64{5, 10, 50}
	s := requestSeries([]apitypes.TrafficSecond{
		// 1000–1009: 99 requests under 5 ms and 1 under 50 ms: p99 is 5 ms.
		{Unix: 1001, Requests: 60, Latency: []uint64{59, 0, 1, 0}, BoundsMs: b},
		{Unix: 1002, Requests: 40, Latency: []uint64{40, 0, 0, 0}, BoundsMs: b},
		// 1010–1019: 2 of 100 over 50 ms: p99 falls in the unbounded
		// bucket, shown as the largest bound.
		{Unix: 1011, Requests: 100, Latency: []uint64{90, 8, 0, 2}, BoundsMs: b},
		// 1020–1029: counts without a histogram: no latency point.
		{Unix: 1021, Requests: 3},
	})
	got := s.Metrics[latencyChart]
	want := []apitypes.MetricPoint{{T: 1000, V: 5}, {T: 1010, V: 50}}
	if !slices.Equal(got, want) {
		t.Fatalf("p99 points %v, want %v", got, want)
	}
	if n := len(s.Metrics[requestsChart]); n != 3 {
		t.Fatalf("%d request points, want 3", n)
	}
	if s := requestSeries([]apitypes.TrafficSecond{{Unix: 1000, Requests: 1}}); s.Metrics[latencyChart] != nil {
		t.Fatalf("a latency chart without histograms: %v", s.Metrics[latencyChart])
	}
}
