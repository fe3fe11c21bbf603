package alert

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Threshold units.
const (
	UnitPercent = "%"
	UnitBytes   = "B"
	UnitNone    = ""
)

// maxValue bounds every threshold (after conversion to bytes): about 909
// TiB or 10^15 requests, far past anything real, and small enough that the
// canonical string form stays short and exact.
const maxValue = 1e15

// maxLen bounds the string form of a threshold.
const maxLen = 64

// byteUnits are the accepted size suffixes, in the order String prefers
// them when two spellings are equally short.
var byteUnits = []struct {
	name   string
	factor float64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

// Threshold is the value a rule compares its metric with. Value is in the
// unit's base: percent for "%", bytes for "B", a plain number for "".
//
// A Threshold is written as a string ("80%", "512MiB", "100", "0.5") in
// JSON and on the command line; see ParseThreshold.
type Threshold struct {
	Value float64
	Unit  string // UnitPercent, UnitBytes or UnitNone
}

// ParseThreshold reads a threshold: a non-negative decimal number ("80",
// "0.5"; no sign, exponent or digit separators) followed by nothing, "%"
// (at most 100) or a size unit (B, KB, MB, GB in powers of 1000, KiB,
// MiB, GiB in powers of 1024; sizes are rounded to whole bytes). Outer
// spaces are ignored; values are at most 10^15 (bytes, for sizes).
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Threshold{}, fmt.Errorf("threshold: empty")
	}
	if len(s) > maxLen {
		return Threshold{}, fmt.Errorf("threshold: longer than %d characters", maxLen)
	}
	if s[0] == '-' {
		return Threshold{}, fmt.Errorf("threshold %q: must not be negative", s)
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], s[i:]
	if !isDecimal(num) {
		if f, err := strconv.ParseFloat(s, 64); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return Threshold{}, fmt.Errorf("threshold %q: must be a finite number", s)
		}
		return Threshold{}, fmt.Errorf("threshold %q: not a number (want e.g. 80%%, 0.5, 512MiB)", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil { // unreachable for decimals of at most 64 digits
		return Threshold{}, fmt.Errorf("threshold %q: %w", s, err)
	}
	t := Threshold{Value: v, Unit: unit}
	switch unit {
	case UnitPercent, UnitNone:
	default:
		f, ok := byteFactor(unit)
		if !ok {
			return Threshold{}, fmt.Errorf("threshold %q: unknown unit %q (want %%, B, KB, MB, GB, KiB, MiB, GiB or none)", s, unit)
		}
		t = Threshold{Value: math.Round(v * f), Unit: UnitBytes}
	}
	if err := t.check(); err != nil {
		return Threshold{}, fmt.Errorf("threshold %q: %w", s, err)
	}
	return t, nil
}

// isDecimal reports whether s is digits with an optional fraction ("1",
// "0.5"; not ".5", "5." or "1.2.3").
func isDecimal(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") {
		return false
	}
	return !strings.Contains(frac, ".")
}

func byteFactor(unit string) (float64, bool) {
	for _, u := range byteUnits {
		if u.name == unit {
			return u.factor, true
		}
	}
	return 0, false
}

// check reports what is wrong with a threshold that did not come from
// ParseThreshold (say, one built in code or decoded by hand).
func (t Threshold) check() error {
	switch {
	case math.IsNaN(t.Value) || math.IsInf(t.Value, 0):
		return fmt.Errorf("must be a finite number")
	case t.Value < 0 || math.Signbit(t.Value):
		return fmt.Errorf("must not be negative")
	case t.Value > maxValue:
		return fmt.Errorf("larger than %g", float64(maxValue))
	}
	switch t.Unit {
	case UnitPercent:
		if t.Value > 100 {
			return fmt.Errorf("above 100%%")
		}
	case UnitBytes:
		if t.Value != math.Trunc(t.Value) {
			return fmt.Errorf("not a whole number of bytes")
		}
	case UnitNone:
	default:
		return fmt.Errorf("unknown unit %q", t.Unit)
	}
	return nil
}

// String returns the threshold's canonical form, which ParseThreshold
// reads back to the same Threshold. Sizes use the shortest exact
// spelling that is at least 1 of its unit: 536870912 bytes is "512MiB"
// (not "0.5GiB"), 2e8 is "200MB", 1610612736 is "1.5GiB".
func (t Threshold) String() string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	if t.Unit != UnitBytes {
		return num(t.Value) + t.Unit
	}
	best := num(t.Value) + UnitBytes
	for _, u := range byteUnits {
		q := t.Value / u.factor
		s := num(q) + u.name
		if q < 1 || len(s) >= len(best) {
			continue
		}
		if back, err := ParseThreshold(s); err == nil && back == t {
			best = s
		}
	}
	return best
}

// MarshalText writes the canonical string form; it refuses an invalid
// threshold so that one can never be stored.
func (t Threshold) MarshalText() ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("threshold %s: %w", t.String(), err)
	}
	return []byte(t.String()), nil
}

// UnmarshalText reads a threshold with ParseThreshold.
func (t *Threshold) UnmarshalText(b []byte) error {
	v, err := ParseThreshold(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
