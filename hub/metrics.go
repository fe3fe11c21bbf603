package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-platform/wharf/hub/series"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// Agents' metrics samples reach the node their agent is connected to; it
// relays them to the leader once a second, which keeps the series
// (hub/series) for the API and exposes the latest values on /metrics.
const (
	rpcMetrics      = "metrics"
	rpcMetricsQuery = "metrics-query"
)

type metricsBatch struct {
	Host   string              `json:"host"`
	Report *wire.MetricsReport `json:"report"`
}

// metricsReport is the gateway's callback.
func (h *Hub) metricsReport(from pki.AgentIdentity, r *wire.MetricsReport) {
	h.relay.mu.Lock()
	defer h.relay.mu.Unlock()
	if len(h.relay.metrics) < 10_000 {
		h.relay.metrics = append(h.relay.metrics, metricsBatch{Host: from.HostID, Report: r})
	}
}

// addMetrics stores batches in the leader's series.
func (h *Hub) addMetrics(batch []metricsBatch) {
	for _, b := range batch {
		r := b.Report
		if r == nil {
			continue
		}
		if hm := r.Host; hm != nil {
			h.series.Add(series.Owner{Kind: "host", ID: b.Host}, time.UnixMilli(r.UnixMs), map[string]float64{
				"wharf_host_cpu_seconds_total": hm.CpuSeconds, "wharf_host_memory_total_bytes": float64(hm.MemoryTotal),
				"wharf_host_memory_used_bytes": float64(hm.MemoryUsed), "wharf_host_disk_total_bytes": float64(hm.DiskTotal),
				"wharf_host_disk_used_bytes": float64(hm.DiskUsed), "wharf_host_network_receive_bytes_total": float64(hm.NetRxBytes),
				"wharf_host_network_transmit_bytes_total": float64(hm.NetTxBytes)})
		}
		for _, i := range r.Instances {
			at := time.UnixMilli(i.UnixMs)
			if i.UnixMs == 0 {
				at = time.UnixMilli(r.UnixMs)
			}
			h.series.Add(series.Owner{Kind: "instance", ID: i.Instance, App: i.Tenant + "/" + i.App, Tenant: i.Tenant, Host: b.Host}, at, map[string]float64{
				series.CPUSeconds: i.CpuSeconds, series.MemoryWorkingSet: float64(i.MemoryWorkingSet), series.MemoryUsage: float64(i.MemoryUsage),
				series.NetRx: float64(i.NetRxBytes), series.NetTx: float64(i.NetTxBytes), series.FsUsage: float64(i.FsUsageBytes)})
		}
	}
}

func (h *Hub) metricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []metricsBatch
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.addMetrics(batch)
	})
}

// MetricsQuery selects series: an app's instances ("tenant/app") or a host.
type metricsQuery struct {
	App  string `json:"app,omitempty"`
	Host string `json:"host,omitempty"`
	From int64  `json:"from"`
	To   int64  `json:"to"`
	Step int64  `json:"step_ms"`
}

func (h *Hub) queryMetrics(q metricsQuery) []apitypes.MetricSeries {
	match := func(o series.Owner) bool {
		if q.App != "" {
			return o.Kind == "instance" && o.App == q.App
		}
		return o.Kind == "host" && o.ID == q.Host
	}
	out := []apitypes.MetricSeries{}
	for _, s := range h.series.Query(match, time.Unix(q.From, 0), time.Unix(q.To, 0), time.Duration(q.Step)*time.Millisecond) {
		ms := apitypes.MetricSeries{ID: s.ID, Host: s.Host, Metrics: map[string][]apitypes.MetricPoint{}}
		for m, pts := range s.Metrics {
			for _, p := range pts {
				ms.Metrics[m] = append(ms.Metrics[m], apitypes.MetricPoint{T: p.Unix, V: p.Value})
			}
		}
		out = append(out, ms)
	}
	return out
}

func (h *Hub) metricsQueryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q metricsQuery
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(h.queryMetrics(q))
	})
}

// metrics answers the API's metric reads from the leader's series.
func (h *Hub) metrics(ctx context.Context, app, host string, from, to time.Time, step time.Duration) ([]apitypes.MetricSeries, error) {
	q := metricsQuery{App: app, Host: host, From: from.Unix(), To: to.Unix(), Step: step.Milliseconds()}
	if h.cluster.IsLeader() {
		return h.queryMetrics(q), nil
	}
	body, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := h.cluster.CallLeader(ctx, rpcMetricsQuery, body)
	if err != nil {
		return nil, err
	}
	var ss []apitypes.MetricSeries
	err = json.Unmarshal(out, &ss)
	return ss, err
}

// instanceCollector exposes the latest instance and host values on the
// leader's /metrics, labelled tenant/app/instance/host (followers have none).
type instanceCollector struct{ store *series.Store }

var instanceMetricKinds = map[string]prometheus.ValueType{
	series.CPUSeconds: prometheus.CounterValue, series.MemoryWorkingSet: prometheus.GaugeValue, series.MemoryUsage: prometheus.GaugeValue,
	series.NetRx: prometheus.CounterValue, series.NetTx: prometheus.CounterValue, series.FsUsage: prometheus.GaugeValue,
}

func (c instanceCollector) Describe(ch chan<- *prometheus.Desc) {} // unchecked: the series come and go

func (c instanceCollector) Collect(ch chan<- prometheus.Metric) {
	c.store.Latest(func(o series.Owner, vals map[string]float64) {
		for m, v := range vals {
			var desc *prometheus.Desc
			var labels []string
			kind := prometheus.GaugeValue
			if o.Kind == "instance" {
				k, ok := instanceMetricKinds[m]
				if !ok {
					continue
				}
				kind = k
				desc = prometheus.NewDesc(m, "cAdvisor "+m+" of a Wharf instance", []string{"tenant", "app", "instance", "host"}, nil)
				app := o.App
				if len(o.Tenant) < len(app) {
					app = app[len(o.Tenant)+1:]
				}
				labels = []string{o.Tenant, app, o.ID, o.Host}
			} else {
				if len(m) > 6 && m[len(m)-6:] == "_total" {
					kind = prometheus.CounterValue
				}
				desc = prometheus.NewDesc(m, "Wharf host "+m, []string{"host"}, nil)
				labels = []string{o.ID}
			}
			if pm, err := prometheus.NewConstMetric(desc, kind, v, labels...); err == nil {
				ch <- pm
			}
		}
	})
}
