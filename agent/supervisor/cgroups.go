package supervisor

// ExecCgroups maps the instances this host tracks to the cgroup the exec
// driver gives them (relative to the cgroup mount), for metrics.
func (s *Supervisor) ExecCgroups(host string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id := range s.inst {
		out[id] = "/wharf/" + host + "/" + id
	}
	return out
}

// ExecLabels names an instance's app and tenant from the assignments.
func (s *Supervisor) ExecLabels(id string) (app, tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desired != nil {
		for _, in := range s.desired.Instances {
			if in.Id == id {
				return in.App, in.Tenant
			}
		}
	}
	return "", ""
}
