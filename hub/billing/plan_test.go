package billing

import (
	"errors"
	"testing"
)

func TestParsePlan(t *testing.T) {
	ok := PlanSpec{Name: "std", Currency: "USD", Prices: map[string]string{"instance_hour": "0.0125", "egress_gb": "0.090"},
		Included: map[string]string{"egress_gb": "10"}, MonthlyFee: "5"}
	p, err := ParsePlan(ok)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Canonical()
	if c.Prices["instance_hour"] != "0.0125" || c.Prices["egress_gb"] != "0.09" || c.Included["egress_gb"] != "10" || c.MonthlyFee != "5.00" || len(c.Prices) != 2 {
		t.Fatalf("canonical: %+v", c)
	}
	if p.Price[CPUCoreHour].Sign() != 0 {
		t.Fatal("a price left out is not zero")
	}
	with := func(f func(*PlanSpec)) PlanSpec {
		s := ok
		s.Prices = map[string]string{"instance_hour": "0.01"}
		s.Included = map[string]string{}
		f(&s)
		return s
	}
	bad := []struct {
		name  string
		spec  PlanSpec
		field string
	}{
		{"unknown currency", with(func(s *PlanSpec) { s.Currency = "XXX" }), "currency"},
		{"no currency", with(func(s *PlanSpec) { s.Currency = "" }), "currency"},
		{"price not a decimal", with(func(s *PlanSpec) { s.Prices["instance_hour"] = "cheap" }), "prices.instance_hour"},
		{"price with exponent", with(func(s *PlanSpec) { s.Prices["instance_hour"] = "1e-2" }), "prices.instance_hour"},
		{"negative price", with(func(s *PlanSpec) { s.Prices["egress_gb"] = "-0.01" }), "prices.egress_gb"},
		{"empty price", with(func(s *PlanSpec) { s.Prices["log_gb"] = "" }), "prices.log_gb"},
		{"unknown price key", with(func(s *PlanSpec) { s.Prices["gpu_hour"] = "1" }), "prices.gpu_hour"},
		{"unknown included key", with(func(s *PlanSpec) { s.Included["bananas"] = "1" }), "included.bananas"},
		{"negative included", with(func(s *PlanSpec) { s.Included["egress_gb"] = "-1" }), "included.egress_gb"},
		{"fee finer than cents", with(func(s *PlanSpec) { s.MonthlyFee = "5.001" }), "monthly_fee"},
		{"fee negative", with(func(s *PlanSpec) { s.MonthlyFee = "-5" }), "monthly_fee"},
		{"yen fee with decimals", with(func(s *PlanSpec) { s.Currency, s.MonthlyFee = "JPY", "500.5" }), "monthly_fee"},
		{"too many decimals", with(func(s *PlanSpec) { s.Prices["instance_hour"] = "0.0000000000001" }), "prices.instance_hour"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlan(tt.spec)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("got %v, want an error on field %s", err, tt.field)
			}
		})
	}
	if _, err := ParsePlan(with(func(s *PlanSpec) { s.Currency, s.MonthlyFee = "JPY", "500" })); err != nil {
		t.Fatalf("yen plan: %v", err)
	}
}
