package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	osexec "os/exec"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/e2e/netlab"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// TestMultiHostLogsZeroLoss: an instance prints numbered lines at a steady
// rate while its agent is killed (-9) and restarted, the hub node it ships
// to is killed (-9) and restarted, and the agent is cut off from every hub
// node for 20 s. Every number then appears exactly once in `wharf app
// logs` (the CLI, against a hub node).
func TestMultiHostLogsZeroLoss(t *testing.T) {
	// Liveness slow enough that neither the agent's restart nor the cut
	// gets its host declared down: the one instance must live on.
	m, agents := newMultiHost(t, 3, 1, "--suspect-after", "40s", "--down-after", "2m")
	ctx := context.Background()
	bin := drivertest.BuildTestApp(t)
	m.poolsP1P2(agents)
	const rate, total = 50, 3000 // 60 s of lines
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "talk", Command: []string{bin}, Instances: intp(1), Pools: []string{"p1"},
		Env:   map[string]string{"TESTAPP_PRINT": fmt.Sprint(rate), "TESTAPP_PRINT_COUNT": fmt.Sprint(total)},
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}}
	if _, err := m.admin.Apps().Create(ctx, spec, w); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scaleToZero(t, m.admin, "talk") })
	hubtest.WaitFor(t, 60*time.Second, "the instance running", func() bool {
		is, _, err := m.admin.Apps().Instances(ctx, "talk", q)
		return err == nil && len(is) == 1 && is[0].Ready
	})
	a1 := agents["dc1"][0]
	health := func() agent.Health {
		var h agent.Health
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + a1.AddrPort(7485) + "/healthz")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
		}
		return h
	}
	time.Sleep(5 * time.Second)

	t.Log("kill -9 the agent, restart it 2 s later")
	m.killWharf(a1)
	time.Sleep(2 * time.Second)
	m.restartWharf(a1)
	var shipTo string
	hubtest.WaitFor(t, 30*time.Second, "the agent connected again", func() bool {
		shipTo = health().Hub
		return shipTo != ""
	})
	time.Sleep(3 * time.Second)

	var hub *netlab.Host
	for _, h := range m.hubs {
		if h.AddrPort(7481) == shipTo {
			hub = h
		}
	}
	if hub == nil {
		t.Fatalf("the agent ships to %s, not a hub node of the lab", shipTo)
	}
	t.Logf("kill -9 the hub node it ships to (%s), restart it 5 s later", hub.Name())
	m.killWharf(hub)
	time.Sleep(5 * time.Second)
	m.restartWharf(hub)
	time.Sleep(5 * time.Second)

	t.Log("cut the agent off for 20 s")
	m.lab.CutHost(a1)
	time.Sleep(20 * time.Second)
	m.lab.HealHost(a1)

	// The instance prints its last line at about 60 s (later on a loaded
	// machine); then the agent's buffer drains. Lines ship in order, so
	// once the last one is stored and nothing is unacked, every line the
	// hubs will ever have is there.
	seen := map[int]int{}
	copies := map[int][]apitypes.LogLine{}
	hubtest.WaitUntil(t, 3*time.Minute, "the last line stored and the agent's buffer drained", func() error {
		h := health()
		if !h.Connected || h.LogsUnacked != 0 {
			return fmt.Errorf("agent connected %v, %d lines unacked", h.Connected, h.LogsUnacked)
		}
		cmd := osexec.Command(wharfBin, "app", "logs", "talk", "--tenant", "acme", "-o", "json", "--tail", "100000")
		cmd.Env = append(os.Environ(), "WHARF_ADDR=http://"+m.hubs[2].AddrPort(7480), "WHARF_TOKEN="+m.token)
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("wharf app logs: %v", err)
		}
		seen, copies = map[int]int{}, map[int][]apitypes.LogLine{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l apitypes.LogLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("wharf app logs -o json: %v: %q", err, sc.Text())
			}
			var n int
			if _, err := fmt.Sscanf(l.Line, "line %d", &n); err == nil {
				seen[n]++
				copies[n] = append(copies[n], l)
			}
		}
		if seen[total] == 0 {
			return fmt.Errorf("line %d not stored yet (%d lines so far)", total, len(seen))
		}
		return nil
	})
	if h := health(); h.LogsDropped != 0 {
		t.Fatalf("the agent dropped %d lines", h.LogsDropped)
	}
	var missing, dup []int
	for n := 1; n <= total; n++ {
		switch seen[n] {
		case 0:
			missing = append(missing, n)
		case 1:
		default:
			dup = append(dup, n)
		}
	}
	if len(dup) > 0 {
		t.Logf("copies of line %d: %+v", dup[0], copies[dup[0]])
	}
	if len(missing) > 0 {
		t.Logf("around the first missing: %+v %+v", copies[missing[0]-1], copies[missing[len(missing)-1]+1])
	}
	if len(missing) > 0 || len(dup) > 0 {
		t.Fatalf("of %d lines, %d missing (first %v), %d duplicated (first %v)", total, len(missing), head(missing), len(dup), head(dup))
	}
	t.Logf("all %d lines exactly once", total)
}

func head(xs []int) []int {
	if len(xs) > 10 {
		return xs[:10]
	}
	return xs
}
