package provision

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf-platform/wharf/hub/state"
)

// Metrics are the provisioner's, across this node's terms as leader.
type Metrics struct {
	calls    *prometheus.CounterVec
	machines *prometheus.GaugeVec
	ready    prometheus.Histogram
}

// machineStates are every state a machine gauge is kept for, so that a
// state with no machine reads 0 rather than vanishing.
var machineStates = []string{state.MachineCreating, state.MachineBooting, state.MachineReady,
	state.MachineDraining, state.MachineDeleting, state.MachineFailed}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_provision_cloud_calls_total",
			Help: "Cloud calls the provisioner made, by provider account, action (create, delete, list, shape) and outcome (ok or the error kind).",
		}, []string{"provider", "action", "outcome"}),
		machines: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wharf_provision_machines",
			Help: "Machines of provisioned pools by state, as the leader last read them.",
		}, []string{"state"}),
		ready: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wharf_provision_create_to_ready_seconds",
			Help:    "Time from a machine's creation in the state to its host's enrolment.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 s to ~34 min
		}),
	}
}

// Register exports the metrics on reg.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.calls, m.machines, m.ready)
}

func (m *Metrics) call(provider, action string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = errorKind(err)
	}
	m.calls.WithLabelValues(provider, action, outcome).Inc()
}

func (m *Metrics) count(machines []*state.Machine) {
	n := map[string]int{}
	for _, mc := range machines {
		n[mc.State]++
	}
	for _, s := range machineStates {
		m.machines.WithLabelValues(s).Set(float64(n[s]))
	}
}
