package console

import (
	"net/http/httptest"
	"testing"
	"time"
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
