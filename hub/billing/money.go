package billing

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Money is exact: prices and quantities are big.Rat, amounts are integers
// in the currency's minor unit (big.Int): no binary fractions, ever.
//
// Rounding: an amount is quantity × unit price, computed exactly and
// rounded once to the currency's minor unit, halves away from zero (0.005
// USD is 0.01, 0.015 is 0.02, 2.5 JPY is 3). Amounts are never negative
// here, so this is also "halves up". Totals are sums of rounded amounts.

// Limits of a decimal given as text: enough for any price, small enough
// that a hostile request cannot make the arithmetic slow.
const (
	MaxDecimals  = 12 // digits after the point of a price or included amount
	MaxIntDigits = 15 // digits before the point
	// QuantityDecimals is how many decimals a quantity is printed with;
	// the amount is computed from the exact quantity, not the printed one.
	QuantityDecimals = 9
)

// Currency is an ISO 4217 currency and the decimals of its minor unit.
type Currency struct {
	Code   string
	Digits int
}

// currencyDigits is the ISO 4217 minor unit of the currencies plans may
// use.
var currencyDigits = map[string]int{
	"USD": 2, "EUR": 2, "GBP": 2, "CNY": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "HKD": 2, "SGD": 2,
	"INR": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "TWD": 2,
	"THB": 2, "MYR": 2, "IDR": 2, "PHP": 2, "TRY": 2, "AED": 2, "SAR": 2, "ILS": 2, "RUB": 2,
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// ErrCurrency is returned for a currency code outside the table.
var ErrCurrency = errors.New("unknown currency")

// LookupCurrency returns the currency of an ISO 4217 code (upper case).
func LookupCurrency(code string) (Currency, error) {
	d, ok := currencyDigits[code]
	if !ok {
		return Currency{}, fmt.Errorf("%w %q: want an ISO 4217 code such as USD, EUR, GBP, CNY or JPY", ErrCurrency, code)
	}
	return Currency{Code: code, Digits: d}, nil
}

// ParseDecimal parses a non-negative decimal such as "0.0125": digits,
// optionally a point and more digits; no sign, exponent or spaces.
func ParseDecimal(s string) (*big.Rat, error) {
	return parseDecimal(s, MaxDecimals)
}

func parseDecimal(s string, maxDecimals int) (*big.Rat, error) {
	if strings.HasPrefix(s, "-") {
		return nil, fmt.Errorf("%q is negative", s)
	}
	ip, fp, dot := strings.Cut(s, ".")
	if ip == "" || (dot && fp == "") || !digits(ip) || !digits(fp) {
		return nil, fmt.Errorf("%q is not a decimal such as 0.0125", s)
	}
	if len(strings.TrimLeft(ip, "0")) > MaxIntDigits {
		return nil, fmt.Errorf("%q has more than %d digits before the point", s, MaxIntDigits)
	}
	if len(fp) > maxDecimals {
		return nil, fmt.Errorf("%q has more than %d decimals", s, maxDecimals)
	}
	n, ok := new(big.Int).SetString(ip+fp, 10)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal such as 0.0125", s)
	}
	return new(big.Rat).SetFrac(n, pow10(len(fp))), nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// RoundHalfAway rounds r to an integer, halves away from zero.
func RoundHalfAway(r *big.Rat) *big.Int {
	num, den := r.Num(), r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int)) // toward zero
	m.Abs(m).Lsh(m, 1)
	if m.Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

// Minor returns r, an amount in major units (dollars), in minor units
// (cents), rounded once, halves away from zero.
func (c Currency) Minor(r *big.Rat) *big.Int {
	return RoundHalfAway(new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(c.Digits))))
}

// Format prints minor units as a decimal string with exactly the
// currency's decimals: 1234 cents is "12.34", 5 yen is "5".
func (c Currency) Format(minor *big.Int) string {
	return FormatScaled(minor, c.Digits)
}

// FormatScaled prints n / 10^digits with exactly digits decimals.
func FormatScaled(n *big.Int, digits int) string {
	neg := n.Sign() < 0
	s := new(big.Int).Abs(n).String()
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseAmount parses a non-negative amount such as "100.00" with at most
// the currency's decimals and returns it in minor units.
func (c Currency) ParseAmount(s string) (*big.Int, error) {
	r, err := parseDecimal(s, c.Digits)
	if err != nil {
		if strings.Contains(err.Error(), "decimals") {
			return nil, fmt.Errorf("%q has more decimals than %s has (%d)", s, c.Code, c.Digits)
		}
		return nil, err
	}
	return c.Minor(r), nil // exact: no rounding happens
}

// FormatDecimal prints r with at most maxDecimals decimals (rounded
// halves away from zero; trailing zeros dropped): the quantity 1/3 is
// "0.333333333", 1.5 is "1.5", 2 is "2".
func FormatDecimal(r *big.Rat, maxDecimals int) string {
	n := RoundHalfAway(new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(maxDecimals))))
	s := FormatScaled(n, maxDecimals)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// FormatQuantity prints a quantity with up to QuantityDecimals decimals.
func FormatQuantity(r *big.Rat) string { return FormatDecimal(r, QuantityDecimals) }
