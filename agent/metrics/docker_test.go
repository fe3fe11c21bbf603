package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	info "github.com/google/cadvisor/lib/model"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestDockerInstances runs a burning and an idle instance of this host and
// one instance of another host, and checks what the collector makes of
// them: the burner's CPU time rises, the idle one's does not, both use
// memory, the other host's never shows, and the Gatherer serves the
// burner's series under cAdvisor's names with wharf's labels.
func TestDockerInstances(t *testing.T) {
	cli := dockerClient(t)
	image := burnerImage(t, cli)
	const host = "h-metrics-test"

	c := startCollector(t, Config{HostID: host, Interval: time.Second})
	labels := func(h, inst string) map[string]string {
		return map[string]string{LabelHost: h, LabelInstance: inst, LabelApp: "app-" + inst, LabelTenant: "tenant-1"}
	}
	runContainer(t, cli, image, labels(host, "i-burn"), "burn")
	runContainer(t, cli, image, labels(host, "i-idle"), "idle")
	foreignID := runContainer(t, cli, image, labels("h-other", "i-foreign"), "idle")

	var seen []Sample
	both := func(s Sample) bool {
		seen = append(seen, s)
		_, b := instance(s, "i-burn")
		_, i := instance(s, "i-idle")
		return b && i
	}
	s1 := waitSample(t, c, "with i-burn and i-idle", both)
	burn1, _ := instance(s1, "i-burn")
	idle1, _ := instance(s1, "i-idle")
	// The burner burns a core, so its CPU time rises: by 0.5 s within
	// 1 s on an idle machine, later on a loaded one (never, if the
	// collector does not follow it). Waited for, not timed. The idle
	// one's stats must be read again too: cAdvisor reads a container
	// whose stats do not change less often (up to 6 Intervals), so a
	// sample may still carry its earlier reading.
	s2 := waitSample(t, c, "at least 2 s later, with i-burn's CPU time up by 0.5 s and i-idle read again", func(s Sample) bool {
		seen = append(seen, s)
		b, ok := instance(s, "i-burn")
		i, iok := instance(s, "i-idle")
		return ok && iok && b.Timestamp.Sub(burn1.Timestamp) >= 2*time.Second && b.CPUSeconds-burn1.CPUSeconds >= 0.5 &&
			i.Timestamp.After(idle1.Timestamp)
	})
	burn2, _ := instance(s2, "i-burn")
	idle2, ok := instance(s2, "i-idle")
	if !ok {
		t.Fatalf("i-idle missing from the second sample: %+v", s2)
	}

	t.Logf("i-burn %.3f -> %.3f s CPU over %v; i-idle %.3f -> %.3f s; working sets %d, %d bytes",
		burn1.CPUSeconds, burn2.CPUSeconds, burn2.Timestamp.Sub(burn1.Timestamp), idle1.CPUSeconds, idle2.CPUSeconds,
		burn2.MemoryWorkingSet, idle2.MemoryWorkingSet)

	t.Run("IdleCPUFlat", func(t *testing.T) {
		// A sleeping process still spends a little CPU (its runtime's
		// housekeeping, the end of its start-up on a loaded machine):
		// flat is under a tenth of a core over the samples' interval, and
		// under a quarter of what the burner spent meanwhile, so that
		// swapped or summed containers fail.
		d := idle2.CPUSeconds - idle1.CPUSeconds
		over := idle2.Timestamp.Sub(idle1.Timestamp).Seconds()
		burnt := burn2.CPUSeconds - burn1.CPUSeconds
		if d < 0 || d >= 0.1*over || d >= burnt/4 {
			t.Errorf("i-idle CPU moved %.3f s over %.1f s between samples (i-burn's %.3f s), want [0, min(%.3f, %.3f))", d, over, burnt, 0.1*over, burnt/4)
		}
	})
	t.Run("Identity", func(t *testing.T) {
		for _, is := range []InstanceStats{burn2, idle2} {
			if is.App != "app-"+is.Instance || is.Tenant != "tenant-1" {
				t.Errorf("%s: app %q tenant %q", is.Instance, is.App, is.Tenant)
			}
		}
	})
	t.Run("Memory", func(t *testing.T) {
		for _, is := range []InstanceStats{burn2, idle2} {
			if is.MemoryWorkingSet == 0 || is.MemoryUsage == 0 {
				t.Errorf("%s: working set %d, usage %d, want > 0", is.Instance, is.MemoryWorkingSet, is.MemoryUsage)
			}
		}
	})
	t.Run("FsUsage", func(t *testing.T) {
		// cAdvisor measures writable layers in the background, so the
		// first samples may have none yet.
		waitSample(t, c, "with i-burn's writable layer measured", func(s Sample) bool {
			b, _ := instance(s, "i-burn")
			return b.FsUsageBytes > 0
		})
	})
	t.Run("ForeignAbsent", func(t *testing.T) {
		// cAdvisor itself must know the foreign container, or its absence
		// proves nothing.
		m := c.manager()
		if m == nil {
			t.Fatal("collector not running")
		}
		infos, err := m.GetContainerInfoV2(foreignID, info.RequestOptions{IdType: info.TypeDocker, Count: 1})
		if err != nil || len(infos) != 1 {
			t.Fatalf("cAdvisor does not know the foreign container: %v (%d infos)", err, len(infos))
		}
		for _, s := range append(seen, c.Latest()) {
			if _, ok := instance(s, "i-foreign"); ok {
				t.Fatalf("the other host's instance shows in a sample: %+v", s)
			}
			if len(s.Instances) > 2 {
				t.Fatalf("more instances than this host runs: %+v", s.Instances)
			}
		}
	})
	t.Run("Gatherer", func(t *testing.T) {
		families := scrape(t, c)
		fam := families["container_cpu_usage_seconds_total"]
		if fam == nil {
			t.Fatalf("no container_cpu_usage_seconds_total; families: %v", keys(families))
		}
		var burn *dto.Metric
		for _, m := range fam.Metric {
			l := labelMap(m)
			switch l["instance"] {
			case "i-burn":
				burn = m
			case "i-foreign":
				t.Errorf("the other host's instance is served: %v", l)
			case "":
				t.Errorf("series without instance label: %v", l)
			}
			for k := range l {
				if k != "instance" && k != "app" && k != "tenant" && k != "cpu" {
					t.Errorf("unexpected label %q in %v", k, l)
				}
			}
		}
		if burn == nil {
			t.Fatalf("no container_cpu_usage_seconds_total{instance=\"i-burn\"} in %v", fam.Metric)
		}
		if l := labelMap(burn); l["app"] != "app-i-burn" || l["tenant"] != "tenant-1" {
			t.Errorf("i-burn labels %v", l)
		}
		if v := burn.GetCounter().GetValue(); v <= 0 {
			t.Errorf("i-burn CPU counter %v, want > 0", v)
		}
		for _, name := range []string{"container_memory_working_set_bytes", "container_memory_usage_bytes", "container_spec_memory_limit_bytes",
			"container_network_receive_bytes_total", "container_network_transmit_bytes_total", "container_fs_usage_bytes"} {
			if families[name] == nil {
				t.Errorf("no %s", name)
			}
		}
	})
}

// scrape serves c's Gatherer over HTTP on loopback, as the agent would, and
// parses the text exposition.
func scrape(t testing.TB, c *Collector) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(c.Gatherer(), promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s %v\n%s", res.Status, err, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	return families
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
