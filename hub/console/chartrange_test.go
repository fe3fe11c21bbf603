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
