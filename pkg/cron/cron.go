// Package cron parses five-field cron expressions (minute, hour, day of
// month, month, day of week) and finds their firing times, for scheduled
// scaling. It knows numbers, "*", ranges "a-b", steps "*/n" and "a-b/n",
// and lists "a,b"; day of week is 0-7 with 0 and 7 both Sunday. As in
// Vixie cron, when both day of month and day of week are restricted a day
// matches if either does.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	// Schedules name IANA time zones, and the binary also runs where the
	// system has no zoneinfo (a FROM scratch image): it carries its own.
	_ "time/tzdata"
)

// Schedule is a parsed cron expression.
type Schedule struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	domStar, dowStar              bool
}

type field struct {
	name     string
	min, max int
}

var fields = [5]field{
	{"minute", 0, 59},
	{"hour", 0, 23},
	{"day of month", 1, 31},
	{"month", 1, 12},
	{"day of week", 0, 7},
}

// Parse parses a five-field cron expression.
func Parse(expr string) (*Schedule, error) {
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return nil, fmt.Errorf("cron %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", expr, len(parts))
	}
	var bits [5]uint64
	for i, p := range parts {
		b, err := parseField(p, fields[i])
		if err != nil {
			return nil, fmt.Errorf("cron %q: %w", expr, err)
		}
		bits[i] = b
	}
	s := &Schedule{minute: bits[0], hour: bits[1], dom: bits[2], month: bits[3], dow: bits[4],
		domStar: parts[2] == "*", dowStar: parts[4] == "*"}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow |= 1
	}
	return s, nil
}

func parseField(s string, f field) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(s, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%s: bad step %q", f.name, stepStr)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = num(a, f); err != nil {
				return 0, err
			}
			if hi, err = num(b, f); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("%s: range %q runs backwards", f.name, rng)
			}
		default:
			n, err := num(rng, f)
			if err != nil {
				return 0, err
			}
			lo = n
			if !hasStep {
				hi = n
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func num(s string, f field) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", f.name, s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%s: %d is outside %d-%d", f.name, n, f.min, f.max)
	}
	return n, nil
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Prev returns the latest firing time at or before t (to the minute, in
// t's location), looking back at most lookback; ok is false when it did
// not fire within it.
func (s *Schedule) Prev(t time.Time, lookback time.Duration) (time.Time, bool) {
	limit := t.Add(-lookback)
	bound := t.Truncate(time.Minute)
	// Whole days backwards; within a day, the latest matching hour and
	// minute not after the bound.
	for days := 0; days <= int(lookback/(24*time.Hour))+1; days++ {
		if at, ok := s.latestOn(bound); ok {
			if at.Before(limit) {
				return time.Time{}, false
			}
			return at, true
		}
		y, mo, d := bound.Date()
		bound = time.Date(y, mo, d-1, 23, 59, 0, 0, bound.Location())
		if bound.Before(limit) {
			return time.Time{}, false
		}
	}
	return time.Time{}, false
}

// latestOn returns the latest firing on bound's day not after bound.
func (s *Schedule) latestOn(bound time.Time) (time.Time, bool) {
	if s.month&(1<<uint(bound.Month())) == 0 || !s.dayMatches(bound) {
		return time.Time{}, false
	}
	for h := bound.Hour(); h >= 0; h-- {
		if s.hour&(1<<uint(h)) == 0 {
			continue
		}
		m := 59
		if h == bound.Hour() {
			m = bound.Minute()
		}
		for ; m >= 0; m-- {
			if s.minute&(1<<uint(m)) != 0 {
				y, mo, d := bound.Date()
				return time.Date(y, mo, d, h, m, 0, 0, bound.Location()), true
			}
		}
	}
	return time.Time{}, false
}

// Matches reports whether the schedule fires in t's minute.
func (s *Schedule) Matches(t time.Time) bool {
	return s.minute&(1<<uint(t.Minute())) != 0 && s.hour&(1<<uint(t.Hour())) != 0 &&
		s.month&(1<<uint(t.Month())) != 0 && s.dayMatches(t)
}
