package netlab

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestBridgeAddressStays: a datacenter's bridge keeps its MAC address as
// hosts join. A bridge that takes the lowest of its ports' addresses
// changes it as ports join, and hosts that learnt the old one lose their
// gateway (TCP connects time out) until their neighbour entry is renewed,
// up to half a minute later.
func TestBridgeAddressStays(t *testing.T) {
	Require(t)
	lab := New(t, Options{})
	dc := lab.AddDC("a")
	mac := func() string {
		t.Helper()
		b, err := os.ReadFile("/sys/class/net/" + dc.Bridge() + "/address")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	first := mac()
	if !strings.HasPrefix(first, "02:") {
		t.Fatalf("bridge address %s, want a locally administered one of the lab's", first)
	}
	for i := range 8 {
		dc.AddHost("h" + strconv.Itoa(i))
		if got := mac(); got != first {
			t.Fatalf("the bridge's address changed from %s to %s when host %d joined", first, got, i)
		}
	}
}
