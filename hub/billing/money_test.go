package billing

import (
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func rat(t testing.TB, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("bad rational %q", s)
	}
	return r
}

func TestMinorRounding(t *testing.T) {
	usd, _ := LookupCurrency("USD")
	jpy, _ := LookupCurrency("JPY")
	kwd, _ := LookupCurrency("KWD")
	tests := []struct {
		cur  Currency
		in   string // exact amount in major units
		want string
	}{
		{usd, "0", "0.00"},
		{usd, "0.004", "0.00"},
		{usd, "0.005", "0.01"}, // a half: away from zero
		{usd, "0.015", "0.02"}, // half-even would give 0.02 too
		{usd, "0.025", "0.03"}, // half-even would give 0.02
		{usd, "0.0249999999", "0.02"},
		{usd, "1/3", "0.33"},
		{usd, "2/3", "0.67"},
		{usd, "-0.005", "-0.01"}, // away from zero on the negative side too
		{usd, "-0.004", "0.00"},
		{usd, "12.345", "12.35"},
		{jpy, "2.5", "3"},
		{jpy, "3.5", "4"},
		{jpy, "2.4999", "2"},
		{jpy, "0.5", "1"},
		{kwd, "0.0005", "0.001"},
		{kwd, "1.2344", "1.234"},
		// Large values stay exact: no float would hold these.
		{usd, "123456789012345678901234567890.125", "123456789012345678901234567890.13"},
		{usd, "9223372036854775807.005", "9223372036854775807.01"},
		{jpy, "99999999999999999999999.5", "100000000000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.cur.Code+" "+tt.in, func(t *testing.T) {
			if got := tt.cur.Format(tt.cur.Minor(rat(t, tt.in))); got != tt.want {
				t.Fatalf("%s %s rounds to %s, want %s", tt.in, tt.cur.Code, got, tt.want)
			}
		})
	}
}

func TestAmountIsQuantityTimesPriceRoundedOnce(t *testing.T) {
	usd, _ := LookupCurrency("USD")
	tests := []struct{ qty, price, want string }{
		{"1", "0.0125", "0.01"},                   // 0.0125 → 0.01
		{"2", "0.0125", "0.03"},                   // 0.025 → 0.03 (half away from zero)
		{"3", "0.0125", "0.04"},                   // 0.0375
		{"1/3", "0.015", "0.01"},                  // 0.005 exactly → 0.01: the exact quantity, not 0.333333333
		{"1/3600", "36", "0.01"},                  // one instance-second at 36/hour
		{"5/9", "0.009", "0.01"},                  // 0.005 exactly
		{"333333333/1000000000", "0.015", "0.00"}, // the printed quantity would round down
	}
	for _, tt := range tests {
		got := usd.Format(usd.Minor(new(big.Rat).Mul(rat(t, tt.qty), rat(t, tt.price))))
		if got != tt.want {
			t.Errorf("%s × %s = %s, want %s", tt.qty, tt.price, got, tt.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	good := map[string]string{"0": "0", "0.0125": "1/80", "1": "1", "10.50": "21/2", "007.5": "15/2", "0.000000000001": "1/1000000000000",
		"999999999999999.999999999999": "999999999999999999999999999/1000000000000"}
	for in, want := range good {
		r, err := ParseDecimal(in)
		if err != nil || r.Cmp(rat(t, want)) != 0 {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-0.5", "1e3", "1E3", "0x10", "1.", ".5", " 1", "1 ", "1,5", "1.2.3", "+1", "NaN", "Inf", "abc", "1_000",
		"0.0000000000001", "1234567890123456"} {
		if r, err := ParseDecimal(in); err == nil {
			t.Errorf("ParseDecimal(%q) = %v, want an error", in, r)
		}
	}
}

func TestParseAmountAndFormat(t *testing.T) {
	usd, _ := LookupCurrency("USD")
	jpy, _ := LookupCurrency("JPY")
	for _, tt := range []struct {
		cur       Currency
		in, minor string
	}{{usd, "100.00", "10000"}, {usd, "5", "500"}, {usd, "0.5", "50"}, {jpy, "100", "100"}} {
		n, err := tt.cur.ParseAmount(tt.in)
		if err != nil || n.String() != tt.minor {
			t.Errorf("%s %q: %v %v, want %s", tt.cur.Code, tt.in, n, err, tt.minor)
		}
	}
	for _, tt := range []struct {
		cur Currency
		in  string
	}{{usd, "0.001"}, {jpy, "1.5"}, {usd, "-1"}, {usd, "1e2"}} {
		if _, err := tt.cur.ParseAmount(tt.in); err == nil {
			t.Errorf("%s %q: no error", tt.cur.Code, tt.in)
		}
	}
	for _, tt := range []struct{ in, want string }{{"1/3", "0.333333333"}, {"2/3", "0.666666667"}, {"3/2", "1.5"}, {"2", "2"}, {"0", "0"},
		{"1/3600", "0.000277778"}, {"1/2000000000", "0.000000001"}, {"1/2000000001", "0"}} {
		if got := FormatQuantity(rat(t, tt.in)); got != tt.want {
			t.Errorf("FormatQuantity(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if _, err := LookupCurrency("XYZ"); err == nil {
		t.Error("unknown currency accepted")
	}
	if _, err := LookupCurrency("usd"); err == nil {
		t.Error("lower-case currency accepted")
	}
}

// TestNoFloats: no billing type holds a float, anywhere inside it, and the
// pricing code never names one.
func TestNoFloats(t *testing.T) {
	types := []any{Usage{}, Plan{}, PlanSpec{}, Period{}, Line{}, Bill{}, Invoice{}, Currency{}, BudgetVerdict{}, FieldError{},
		apitypes.Plan{}, apitypes.PlanRequest{}, apitypes.TenantUpdate{}, apitypes.Bill{}, apitypes.BillLine{}, apitypes.Invoice{},
		apitypes.BudgetStatus{}, apitypes.Tenant{}, state.Plan{}, state.PlanPeriod{}, state.BudgetState{}, state.Tenant{},
		state.PlanCreateRequest{}, state.TenantUpdateRequest{}, state.BudgetCheckRequest{}, state.BudgetNotifiedRequest{}}
	seen := map[reflect.Type]bool{}
	var walk func(path string, tp reflect.Type)
	walk = func(path string, tp reflect.Type) {
		if seen[tp] {
			return
		}
		seen[tp] = true
		switch tp.Kind() {
		case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
			t.Errorf("%s is a %s", path, tp)
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			if tp.Kind() == reflect.Map {
				walk(path+"[key]", tp.Key())
			}
			walk(path+"[]", tp.Elem())
		case reflect.Struct:
			for i := 0; i < tp.NumField(); i++ {
				f := tp.Field(i)
				walk(path+"."+f.Name, f.Type)
			}
		}
	}
	for _, v := range types {
		tp := reflect.TypeOf(v)
		walk(tp.String(), tp)
	}
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasSuffix(base, "_test.go") || !(strings.HasPrefix(base, "money") || strings.HasPrefix(base, "plan") ||
			strings.HasPrefix(base, "bill") || strings.HasPrefix(base, "invoice")) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "float") {
			t.Errorf("%s mentions a float", f)
		}
	}
}
