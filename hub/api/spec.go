package api

import (
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// The API's types and the store's are converted here, field by field, so
// that neither changes the other's format. Inputs were validated and
// normalized before they get here; slices and maps are copied.

func specIn(s apitypes.AppSpec) state.AppSpec {
	out := state.AppSpec{Name: s.Name, Image: s.Image, Command: clone(s.Command), Env: cloneMap(s.Env), CPU: s.CPU, Memory: s.Memory,
		Ports: portsIn(s.Ports), Health: healthIn(s.Health), Pools: clone(s.Pools), Spread: s.Spread, Constraints: clone(s.Constraints),
		FailoverPools: clone(s.FailoverPools)}
	if s.Instances != nil {
		n := *s.Instances
		out.Instances = &n
	}
	if f := s.Failover; f != nil {
		out.Failover = &state.Failover{Mode: f.Mode, MaxDisconnect: state.Duration(f.MaxDisconnect), Failback: f.Failback, FailbackHold: state.Duration(f.FailbackHold)}
	}
	if st := s.Strategy; st != nil {
		out.Strategy = &state.Strategy{Type: st.Type, MaxSurge: st.MaxSurge, MaxUnavailable: st.MaxUnavailable, Canary: st.Canary, Weight: st.Weight,
			AutoRevert: st.AutoRevert, HealthDeadline: state.Duration(st.HealthDeadline)}
	}
	out.Autoscale = autoscaleIn(s.Autoscale)
	return out
}

func specOut(s state.AppSpec) apitypes.AppSpec {
	out := apitypes.AppSpec{Name: s.Name, Image: s.Image, Command: clone(s.Command), Env: cloneMap(s.Env), CPU: s.CPU, Memory: s.Memory,
		Ports: portsOut(s.Ports), Health: healthOut(s.Health), Pools: clone(s.Pools), Spread: s.Spread, Constraints: clone(s.Constraints),
		FailoverPools: clone(s.FailoverPools)}
	if s.Instances != nil {
		n := *s.Instances
		out.Instances = &n
	}
	if f := s.Failover; f != nil {
		out.Failover = &apitypes.Failover{Mode: f.Mode, MaxDisconnect: apitypes.Duration(f.MaxDisconnect), Failback: f.Failback, FailbackHold: apitypes.Duration(f.FailbackHold)}
	}
	if st := s.Strategy; st != nil {
		out.Strategy = &apitypes.Strategy{Type: st.Type, MaxSurge: st.MaxSurge, MaxUnavailable: st.MaxUnavailable, Canary: st.Canary, Weight: st.Weight,
			AutoRevert: st.AutoRevert, HealthDeadline: apitypes.Duration(st.HealthDeadline)}
	}
	out.Autoscale = autoscaleOut(s.Autoscale)
	return out
}

// autoscaleIn converts a normalized policy.
func autoscaleIn(a *apitypes.Autoscale) *state.Autoscale {
	if a == nil {
		return nil
	}
	out := &state.Autoscale{Max: a.Max, CPU: a.CPU, Memory: a.Memory, QPS: a.QPS, Window: state.Duration(a.Window), ScaleDownDelay: state.Duration(a.ScaleDownDelay)}
	if a.Min != nil {
		out.Min = *a.Min
	}
	for _, s := range a.Schedules {
		out.Schedules = append(out.Schedules, state.AutoscaleSchedule{Cron: s.Cron, Timezone: s.Timezone, Min: s.Min, Max: s.Max})
	}
	return out
}

func autoscaleOut(a *state.Autoscale) *apitypes.Autoscale {
	if a == nil {
		return nil
	}
	lo := a.Min
	out := &apitypes.Autoscale{Min: &lo, Max: a.Max, CPU: a.CPU, Memory: a.Memory, QPS: a.QPS, Window: apitypes.Duration(a.Window), ScaleDownDelay: apitypes.Duration(a.ScaleDownDelay)}
	for _, s := range a.Schedules {
		out.Schedules = append(out.Schedules, apitypes.AutoscaleSchedule{Cron: s.Cron, Timezone: s.Timezone, Min: s.Min, Max: s.Max})
	}
	return out
}

func versionSpecOut(v state.VersionSpec) apitypes.VersionSpec {
	return apitypes.VersionSpec{Image: v.Image, Command: clone(v.Command), Env: cloneMap(v.Env), CPU: v.CPU, Memory: v.Memory,
		Ports: portsOut(v.Ports), Health: healthOut(v.Health)}
}

func portsIn(ps []apitypes.Port) []state.Port {
	if ps == nil {
		return nil
	}
	out := make([]state.Port, len(ps))
	for i, p := range ps {
		out[i] = state.Port{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostPort: p.HostPort}
	}
	return out
}

func portsOut(ps []state.Port) []apitypes.Port {
	if ps == nil {
		return nil
	}
	out := make([]apitypes.Port, len(ps))
	for i, p := range ps {
		out[i] = apitypes.Port{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostPort: p.HostPort}
	}
	return out
}

func healthIn(h *apitypes.Health) *state.Health {
	if h == nil {
		return nil
	}
	return &state.Health{HTTP: h.HTTP, TCP: h.TCP, Command: clone(h.Command), Port: h.Port, Interval: state.Duration(h.Interval), Timeout: state.Duration(h.Timeout)}
}

func healthOut(h *state.Health) *apitypes.Health {
	if h == nil {
		return nil
	}
	return &apitypes.Health{HTTP: h.HTTP, TCP: h.TCP, Command: clone(h.Command), Port: h.Port, Interval: apitypes.Duration(h.Interval), Timeout: apitypes.Duration(h.Timeout)}
}

func quotaIn(q apitypes.Quota) state.Quota {
	return state.Quota{Instances: q.Instances, CPU: q.CPU, Memory: q.Memory, LogBytes: q.LogBytes, LogAge: state.Duration(q.LogAge)}
}

func quotaOut(q state.Quota) apitypes.Quota {
	return apitypes.Quota{Instances: q.Instances, CPU: q.CPU, Memory: q.Memory, LogBytes: q.LogBytes, LogAge: apitypes.Duration(q.LogAge)}
}

func clone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
