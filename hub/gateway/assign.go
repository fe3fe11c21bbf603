package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/wharf-platform/wharf/hub/registryauth"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// carriesAuth tells whether any instance of a carries registry credentials.
func carriesAuth(a *wire.Assignments) bool {
	for _, in := range a.Instances {
		if in.RegistryAuth != nil {
			return true
		}
	}
	return false
}

// RegistryCredentials opens the credentials a tenant's image is pulled
// with (nil when it has none: Docker Hub's, or a registry the tenant has
// no credentials for), and tells whether the image's registry is private
// (some tenant keeps credentials for it).
type RegistryCredentials interface {
	ForImage(snap *state.Snapshot, tenant, image string) (creds *registryauth.Credentials, private bool, err error)
}

// assignments builds a host's assignment set: every instance desired to
// run there, with its version's spec, its app's current secrets and the
// credentials its image's registry needs (opened for this host's agent
// only).
//
// An agent of a protocol older than wire.ProtocolSecrets is given neither
// (it would save them to disk with the rest): its instances of apps with
// secrets run without them, and pulls from private registries fail
// naming the missing credentials, until the agent is upgraded.
func (g *Gateway) assignments(snap *state.Snapshot, h *state.Host, protocol uint32) (*wire.Assignments, error) {
	confidential := protocol >= wire.ProtocolSecrets
	is, err := snap.HostInstances(nil, h.ID)
	if err != nil {
		return nil, err
	}
	out := &wire.Assignments{Version: h.AssignIndex}
	for _, i := range is {
		if i.Desired != state.DesiredRun {
			continue
		}
		v, err := snap.AppVersion(nil, i.Tenant, i.App, i.Version)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue // the app is being deleted
		}
		in := &wire.Instance{Id: i.ID, App: i.App, Tenant: i.Tenant, Version: uint32(i.Version), Image: v.Spec.Image,
			Command: v.Spec.Command, Env: v.Spec.Env, Cpu: uint32(i.CPU), Memory: uint32(i.Memory), Desired: wire.DesiredRun}
		if a, err := snap.App(nil, i.Tenant, i.App); err != nil {
			return nil, err
		} else if a != nil {
			if a.Spec.Failover != nil && a.Spec.Failover.Mode == state.FailoverFenced {
				in.Failover, in.MaxDisconnectMs = wire.FailoverFenced, a.Spec.Failover.MaxDisconnect.D().Milliseconds()
			}
			in.FastMetrics = a.Spec.Autoscale.FastMetrics()
			if len(a.Secrets) > 0 && confidential {
				env, ok := g.secrets(a)
				in.SecretEnv, in.SecretsWithheld = env, !ok
			}
		}
		if g.cfg.Registries != nil && v.Spec.Image != "" {
			c, private, err := g.cfg.Registries.ForImage(snap, i.Tenant, v.Spec.Image)
			in.AlwaysPull = private
			if err != nil {
				// The pull goes without them and its failure says so.
				g.log.Warn("registry credentials", "tenant", i.Tenant, "image", v.Spec.Image, "err", err)
			} else if c != nil && confidential {
				in.RegistryAuth = &wire.RegistryAuth{Server: c.Server, Username: c.Username, Password: c.Password}
			}
		}
		for _, p := range v.Spec.Ports {
			in.Ports = append(in.Ports, &wire.Port{Name: p.Name, ContainerPort: uint32(p.ContainerPort), Protocol: p.Protocol, HostPort: uint32(p.HostPort)})
		}
		if hc := v.Spec.Health; hc != nil {
			in.Health = &wire.Health{Http: hc.HTTP, Tcp: uint32(hc.TCP), Command: hc.Command, Port: uint32(hc.Port),
				IntervalMs: hc.Interval.D().Milliseconds(), TimeoutMs: hc.Timeout.D().Milliseconds()}
		}
		out.Instances = append(out.Instances, in)
	}
	return out, nil
}

// reportStatus commits what an agent saw of its instances.
func (g *Gateway) reportStatus(ctx context.Context, id pki.AgentIdentity, r *wire.StatusReport) {
	if len(r.Instances) == 0 {
		return
	}
	if len(r.Instances) > maxPeerViews {
		r.Instances = r.Instances[:maxPeerViews]
	}
	req := &state.InstanceUpdateRequest{Host: id.HostID, Time: g.cfg.Now().UTC()}
	for _, st := range r.Instances {
		stateName, ok := instanceState(st.StateCode)
		if !ok {
			continue
		}
		msg := st.Message
		if len(msg) > 512 {
			msg = msg[:512]
		}
		req.Updates = append(req.Updates, state.InstanceUpdate{ID: st.Id, State: stateName, Ready: st.Ready, Address: st.Address, Restarts: int(st.Restarts),
			Message: msg, Reason: reasonOf(st.Reason)})
	}
	// The agent sends each change once (everything only to a new
	// connection): a report dropped while the cluster elects a leader
	// would leave its instances as they were, e.g. starting forever. So
	// while no leader answers, the commit is retried for as long as the
	// connection lives, up to statusAttempts times; applying a status
	// twice changes nothing.
	backoff := statusRetryMin
	for attempt := 1; ; attempt++ {
		err := g.apply(ctx, state.InstanceUpdateType, req)
		if err == nil || ctx.Err() != nil {
			return
		}
		if !errors.Is(err, state.ErrUnavailable) || attempt == statusAttempts {
			g.log.Warn("instance status", "host", id.HostID, "attempts", attempt, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, statusRetryMax)
	}
}

// A status report's commit is retried without a leader this many times,
// statusRetryMin apart at first, doubling up to statusRetryMax: about a
// minute, longer than any election.
const (
	statusAttempts = 35
	statusRetryMin = 50 * time.Millisecond
	statusRetryMax = 2 * time.Second
)

// reasonOf converts the wire's reason to the state's; a reason this hub
// does not know (a newer agent's) is dropped, the message still says it.
func reasonOf(r wire.Reason) string {
	switch r {
	case wire.Reason_REASON_IMAGE_PULL:
		return state.ReasonImagePull
	case wire.Reason_REASON_START_FAILED:
		return state.ReasonStartFailed
	case wire.Reason_REASON_CRASH_LOOP:
		return state.ReasonCrashLoop
	case wire.Reason_REASON_UNHEALTHY:
		return state.ReasonUnhealthy
	}
	return ""
}

// acked records the assignment version a host's agent applied.
func (g *Gateway) acked(hostID string, version uint64) {
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	if c := g.seen[hostID]; c != nil && version > c.assignAcked {
		c.assignAcked = version
	}
}

// AssignmentAcked returns the assignment version a host's agent last
// acknowledged on this node (0: none).
func (g *Gateway) AssignmentAcked(hostID string) uint64 {
	g.seenMu.Lock()
	defer g.seenMu.Unlock()
	if c := g.seen[hostID]; c != nil {
		return c.assignAcked
	}
	return 0
}

// secrets opens an app's secrets for an assignment; false when any does
// not open (no keys, or sealed under a key this node lacks), so that the
// agent keeps a running instance and starts none without them.
func (g *Gateway) secrets(a *state.App) (map[string]string, bool) {
	if g.cfg.Secrets == nil {
		g.log.Warn("app has secrets but this hub has no data key", "tenant", a.Tenant, "app", a.Name)
		return nil, false
	}
	env := make(map[string]string, len(a.Secrets))
	for name, sealed := range a.Secrets {
		b, err := g.cfg.Secrets.Open(sealed, state.SecretAD(a.Tenant, a.Name, name))
		if err != nil {
			g.log.Warn("open app secret", "tenant", a.Tenant, "app", a.Name, "secret", name, "err", err)
			return nil, false
		}
		env[name] = string(b)
		clear(b)
	}
	return env, true
}
