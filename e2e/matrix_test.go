//go:build e2e

package e2e

import (
	"fmt"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// TestFailoverMatrix is the full failover matrix `make e2e` runs (the
// small scenarios of `make test`, repeated, with the test's fast liveness
// settings and the defaults): datacenter loss, a datacenter cut with each
// failover mode, and host death.
func TestFailoverMatrix(t *testing.T) {
	for run := 0; run < 3; run++ {
		for _, liveness := range [][]string{nil, {"--suspect-after", "4s", "--down-after", "10s"}} {
			name := "fast"
			if liveness != nil {
				name = "defaults"
			}
			t.Run(fmt.Sprintf("%d/%s/datacenter-loss", run, name), func(t *testing.T) {
				first, all := datacenterLoss(t, liveness...)
				t.Logf("serving after %s, all ready after %s", first, all)
			})
			t.Run(fmt.Sprintf("%d/%s/host-death", run, name), func(t *testing.T) {
				t.Logf("all ready after %s", hostDeath(t, liveness...))
			})
		}
		for _, mode := range []string{apitypes.FailoverFenced, apitypes.FailoverAvailability} {
			t.Run(fmt.Sprintf("%d/cut/%s", run, mode), func(t *testing.T) { cutDatacenter(t, mode) })
		}
	}
}
