package deadline

import (
	"testing"
	"time"
)

func TestScale(t *testing.T) {
	t.Setenv("WHARF_TEST_SLOWDOWN", "")
	base := Scale(time.Second) // this machine's factor, without the variable
	for _, tc := range []struct {
		env  string
		want time.Duration // at least
	}{
		{"", time.Second},
		{"2", 2 * time.Second},
		{"0.5", time.Second}, // never shorter
		{"fast", time.Second},
		{"+Inf", time.Second},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("WHARF_TEST_SLOWDOWN", tc.env)
			got := Scale(time.Second)
			if got < tc.want {
				t.Fatalf("Scale(1s) with WHARF_TEST_SLOWDOWN=%q = %s, want at least %s", tc.env, got, tc.want)
			}
			if raceEnabled && got < 3*time.Second {
				t.Fatalf("Scale(1s) under the race detector = %s, want at least 3s", got)
			}
			if tc.env == "2" && got < 2*base*9/10 { // the load may move between calls
				t.Fatalf("Scale(1s) with WHARF_TEST_SLOWDOWN=2 = %s, without %s", got, base)
			}
		})
	}
}
