package series

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the latest instance and host values of a store on
// /metrics, labelled tenant/app/instance/host (a follower's store is
// empty).
type Collector struct{ Store *Store }

var instanceMetricKinds = map[string]prometheus.ValueType{
	CPUSeconds: prometheus.CounterValue, MemoryWorkingSet: prometheus.GaugeValue, MemoryUsage: prometheus.GaugeValue,
	NetRx: prometheus.CounterValue, NetTx: prometheus.CounterValue, FsUsage: prometheus.GaugeValue,
}

// Describe sends nothing: the series come and go (an unchecked collector).
func (c Collector) Describe(ch chan<- *prometheus.Desc) {}

// Collect sends the latest values.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	c.Store.Latest(func(o Owner, vals map[string]float64) {
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
