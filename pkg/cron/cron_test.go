package cron

import (
	"strings"
	"testing"
	"time"
)

func TestParseRefusesBadExpressions(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"* * * *", "want 5 fields"},
		{"60 * * * *", "minute: 60 is outside 0-59"},
		{"* 24 * * *", "hour: 24 is outside 0-23"},
		{"* * 0 * *", "day of month: 0 is outside 1-31"},
		{"* * * 13 *", "month: 13 is outside 1-12"},
		{"* * * * 8", "day of week: 8 is outside 0-7"},
		{"*/0 * * * *", "bad step"},
		{"5-1 * * * *", "runs backwards"},
		{"a * * * *", "is not a number"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := Parse(tc.expr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) = %v, want an error with %q", tc.expr, err, tc.want)
			}
		})
	}
}

func TestPrev(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// 2026-12-04 is a Friday.
	for _, tc := range []struct {
		name, expr string
		at         time.Time
		lookback   time.Duration
		want       time.Time // zero: none
	}{
		{"weekday 9:00, same day", "0 9 * * 1-5", utc("2026-12-04 10:30"), 8 * 24 * time.Hour, utc("2026-12-04 09:00")},
		{"weekday 9:00, at the minute", "0 9 * * 1-5", utc("2026-12-04 09:00"), 8 * 24 * time.Hour, utc("2026-12-04 09:00")},
		{"weekday 9:00, before it: yesterday", "0 9 * * 1-5", utc("2026-12-04 08:59"), 8 * 24 * time.Hour, utc("2026-12-03 09:00")},
		{"weekday 9:00 on Monday morning: Friday", "0 9 * * 1-5", utc("2026-12-07 08:00"), 8 * 24 * time.Hour, utc("2026-12-04 09:00")},
		{"every 15 minutes", "*/15 * * * *", utc("2026-12-04 10:44"), time.Hour, utc("2026-12-04 10:30")},
		{"list", "5,50 * * * *", utc("2026-12-04 10:49"), time.Hour, utc("2026-12-04 10:05")},
		{"Sunday as 7", "0 0 * * 7", utc("2026-12-04 10:00"), 8 * 24 * time.Hour, utc("2026-11-29 00:00")},
		{"dom or dow", "0 0 1 * 5", utc("2026-12-04 10:00"), 8 * 24 * time.Hour, utc("2026-12-04 00:00")},
		{"dom or dow, the dom", "0 0 1 * 5", utc("2026-12-02 10:00"), 8 * 24 * time.Hour, utc("2026-12-01 00:00")},
		{"not within lookback", "0 0 1 1 *", utc("2026-12-04 10:00"), 8 * 24 * time.Hour, time.Time{}},
		{"lookback cuts the same day", "0 9 * * *", utc("2026-12-04 10:30"), time.Hour, time.Time{}},
		{"time zone", "0 9 * * *", utc("2026-12-04 02:00").In(shanghai), 24 * time.Hour, utc("2026-12-04 01:00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.Prev(tc.at, tc.lookback)
			if tc.want.IsZero() {
				if ok {
					t.Fatalf("Prev = %v, want none", got)
				}
				return
			}
			if !ok || !got.Equal(tc.want) {
				t.Fatalf("Prev = %v %v, want %v", got, ok, tc.want)
			}
			if !s.Matches(got) {
				t.Fatalf("Matches(%v) = false for its own firing", got)
			}
		})
	}
}

// TestPrevAgreesWithMatches: Prev is the latest minute Matches accepts,
// checked minute by minute over two weeks for assorted expressions.
func TestPrevAgreesWithMatches(t *testing.T) {
	start := time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC)
	for _, expr := range []string{"0 9 * * 1-5", "*/7 3-5 * * *", "30 12 1,15 * *", "0 0 29 2 *", "15 */6 * 1-3 0", "0 0 31 * 1"} {
		s, err := Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		var last time.Time
		for m := 0; m < 14*24*60; m++ {
			at := start.Add(time.Duration(m) * time.Minute)
			if s.Matches(at) {
				last = at
			}
			got, ok := s.Prev(at.Add(30*time.Second), at.Sub(start)+30*time.Second)
			if ok != !last.IsZero() || (ok && !got.Equal(last)) {
				t.Fatalf("%s at %v: Prev = %v %v, want %v", expr, at, got, ok, last)
			}
		}
	}
}
