package apitypes

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// UsageRow is one row of GET /v1/usage: what one app of a tenant used in
// [From, To). Rows of one answer never overlap. Final is false for a
// period that reaches into an hour not closed yet (its quantities may
// still grow).
type UsageRow struct {
	Tenant          string    `json:"tenant"`
	App             string    `json:"app"`
	From            time.Time `json:"from"`
	To              time.Time `json:"to"`
	InstanceSeconds int64     `json:"instance_seconds"`
	// CPUCoreSeconds is reserved CPU in core-seconds and MemoryGBSeconds
	// reserved memory in GB-seconds (1 GB = 1024 MB): exact decimals.
	CPUCoreSeconds  Decimal `json:"cpu_core_seconds"`
	MemoryGBSeconds Decimal `json:"memory_gb_seconds"`
	Requests        int64   `json:"requests"`
	EgressBytes     int64   `json:"egress_bytes"`
	LogBytes        int64   `json:"log_bytes"`
	Final           bool    `json:"final"`
}

// Usage groupings (?group=).
const (
	UsageByHour = "hour"
	UsageByDay  = "day"
	UsageByApp  = "app"
)

// Decimal is an exact decimal number, sent as a JSON number (0.75), never
// through a float.
type Decimal string

// DecimalRatio returns n/d written exactly; d must have no prime factor
// but 2 and 5 (1000, 1024), which makes every such ratio a finite
// decimal.
func DecimalRatio(n, d int64) Decimal {
	neg := n < 0
	if neg {
		n = -n
	}
	q, r := n/d, n%d
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(strconv.FormatInt(q, 10))
	if r != 0 {
		b.WriteByte('.')
		for i := 0; r != 0 && i < 40; i++ {
			r *= 10
			b.WriteByte(byte('0' + r/d))
			r %= d
		}
	}
	return Decimal(b.String())
}

// MarshalJSON writes the number as it is.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if d == "" {
		return []byte("0"), nil
	}
	if !validDecimal(string(d)) {
		return nil, errors.New("not a decimal number: " + strconv.Quote(string(d)))
	}
	return []byte(d), nil
}

// UnmarshalJSON takes a JSON number (or a string holding one) as written.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	s := string(b)
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	if !validDecimal(s) {
		return errors.New("not a decimal number: " + strconv.Quote(s))
	}
	*d = Decimal(s)
	return nil
}

// validDecimal accepts -?DIGITS(.DIGITS)?.
func validDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(x string) bool {
		if x == "" {
			return false
		}
		for _, c := range x {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	return digits(whole) && (!dot || digits(frac))
}
