package alert

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestParseThreshold(t *testing.T) {
	accepted := []struct {
		in   string
		want Threshold
		str  string // canonical form
	}{
		{"80%", Threshold{80, "%"}, "80%"},
		{"0%", Threshold{0, "%"}, "0%"},
		{"100%", Threshold{100, "%"}, "100%"},
		{"99.5%", Threshold{99.5, "%"}, "99.5%"},
		{"80", Threshold{80, ""}, "80"},
		{"0", Threshold{0, ""}, "0"},
		{"0.5", Threshold{0.5, ""}, "0.5"},
		{"007", Threshold{7, ""}, "7"},
		{" 12 ", Threshold{12, ""}, "12"},
		{"1000000000000000", Threshold{1e15, ""}, "1000000000000000"},
		{"512MiB", Threshold{512 << 20, "B"}, "512MiB"},
		{"1GiB", Threshold{1 << 30, "B"}, "1GiB"},
		{"1.5GiB", Threshold{3 << 29, "B"}, "1.5GiB"},
		{"200MB", Threshold{2e8, "B"}, "200MB"},
		{"512KB", Threshold{512000, "B"}, "512KB"},
		{"1024B", Threshold{1024, "B"}, "1KiB"},
		{"0B", Threshold{0, "B"}, "0B"},
		{"1.1KiB", Threshold{1126, "B"}, "1126B"}, // rounded to whole bytes
		{"3GB", Threshold{3e9, "B"}, "3GB"},
	}
	for _, c := range accepted {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseThreshold(c.in)
			if err != nil {
				t.Fatalf("ParseThreshold(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("ParseThreshold(%q) = %+v, want %+v", c.in, got, c.want)
			}
			if s := got.String(); s != c.str {
				t.Fatalf("String() = %q, want %q", s, c.str)
			}
			back, err := ParseThreshold(got.String())
			if err != nil || back != got {
				t.Fatalf("round trip of %q: %+v, %v", got.String(), back, err)
			}
		})
	}

	refused := []struct{ in, frag string }{
		{"", "empty"},
		{"   ", "empty"},
		{"-5", "negative"},
		{"-0%", "negative"},
		{"NaN", "finite"},
		{"Inf", "finite"},
		{"+Inf", "finite"},
		{"-Inf", "negative"},
		{"101%", "above 100%"},
		{"100.0001%", "above 100%"},
		{"abc", "not a number"},
		{"%", "not a number"},
		{"MiB", "not a number"},
		{".5", "not a number"},
		{"5.", "not a number"},
		{"1.2.3", "not a number"},
		{"+5", "not a number"},
		{"0x10", "unknown unit"},
		{"1e3", "unknown unit"},
		{"1_000", "unknown unit"},
		{"1.5k", `unknown unit "k"`},
		{"512 MiB", "unknown unit"},
		{"512mib", "unknown unit"},
		{"80%%", "unknown unit"},
		{"1TiB", "unknown unit"},
		{"10000000000000000", "larger than"},
		{"1000000GiB", "larger than"},
		{strings.Repeat("1", 65), "longer than 64"},
	}
	for _, c := range refused {
		t.Run("refuse "+c.in, func(t *testing.T) {
			got, err := ParseThreshold(c.in)
			if err == nil {
				t.Fatalf("ParseThreshold(%q) = %+v, want an error", c.in, got)
			}
			if !strings.Contains(err.Error(), c.frag) {
				t.Fatalf("ParseThreshold(%q): %v, want it to mention %q", c.in, err, c.frag)
			}
		})
	}
}

func TestThresholdJSON(t *testing.T) {
	var v struct{ T Threshold }
	if err := json.Unmarshal([]byte(`{"T":"512MiB"}`), &v); err != nil || v.T != (Threshold{512 << 20, "B"}) {
		t.Fatalf("unmarshal: %+v, %v", v.T, err)
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) != `{"T":"512MiB"}` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	for _, in := range []string{`{"T":"150%"}`, `{"T":80}`, `{"T":"x"}`} {
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("unmarshal %s: no error", in)
		}
	}
	// An invalid threshold built in code is never written.
	for _, bad := range []Threshold{{150, "%"}, {math.NaN(), ""}, {-1, ""}, {1.5, "B"}, {1, "x"}} {
		if b, err := json.Marshal(bad); err == nil {
			t.Errorf("marshal %+v = %s, want an error", bad, b)
		}
	}
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"80%", "0.5", "512MiB", "1.5GiB", "200MB", "1.1KiB", "-1", "NaN", "1e3", "100.5%", "0.0000001", "999999999999999.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThreshold(s)
		if err != nil {
			return
		}
		if err := th.check(); err != nil {
			t.Fatalf("ParseThreshold(%q) = %+v, which check refuses: %v", s, th, err)
		}
		str := th.String()
		back, err := ParseThreshold(str)
		if err != nil || back != th {
			t.Fatalf("ParseThreshold(%q) = %+v; its String %q reads back as %+v, %v", s, th, str, back, err)
		}
		if str2 := back.String(); str2 != str {
			t.Fatalf("String not stable: %q then %q", str, str2)
		}
	})
}
