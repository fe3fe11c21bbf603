package state

import (
	"slices"
	"time"
)

// Meta carries the Raft indexes of an object's creation and last change.
type Meta struct {
	CreateIndex uint64
	ModifyIndex uint64
}

// Tenant is an isolated owner of apps and tokens.
type Tenant struct {
	Name      string
	Pools     []string // pools the tenant may use; empty: all
	Quota     Quota
	CreatedAt time.Time
	Meta

	// Billing (omitted when unset, so older snapshots read the same).
	// Plans is the plan history, oldest first.
	Plans []PlanPeriod `json:",omitempty"`
	// Budget is a monthly budget in the plan's currency ("100.00"); ""
	// is none. With BudgetHardStop, nothing that adds instances is
	// accepted while the month's total is at or over it.
	Budget         string `json:",omitempty"`
	BudgetHardStop bool   `json:",omitempty"`
	BudgetWebhook  string `json:",omitempty"` // where budget alerts are posted
	// SealedBudgetSecret is the budget webhook's signing secret, sealed
	// with the data key (nil: posts are not signed).
	SealedBudgetSecret []byte       `json:",omitempty"`
	BudgetState        *BudgetState `json:",omitempty"`
}

// Copy returns a deep copy.
func (t *Tenant) Copy() *Tenant {
	c := *t
	c.Pools = append([]string(nil), t.Pools...)
	if t.Plans != nil {
		c.Plans = make([]PlanPeriod, len(t.Plans))
		for i, p := range t.Plans {
			p.PlanTerms = p.PlanTerms.copy()
			c.Plans[i] = p
		}
	}
	c.BudgetState = t.BudgetState.copy()
	c.SealedBudgetSecret = slices.Clone(t.SealedBudgetSecret)
	return &c
}

// Token is an API token. Only the SHA-256 of its secret is stored.
type Token struct {
	ID         string // public accessor, used to list and revoke
	Name       string
	Role       Role
	Tenant     string // "" for admin tokens
	SecretHash string // hex SHA-256 of the secret
	CreatedAt  time.Time
	Meta
}

// Copy returns a copy.
func (t *Token) Copy() *Token { c := *t; return &c }

// Pool is a named group of hosts.
type Pool struct {
	Name       string
	Datacenter string
	Region     string
	Provider   string
	Labels     map[string]string
	// Drivers, when set, are the drivers the pool's hosts run: whether the
	// pool could ever run an app is judged from them (else from Provider).
	Drivers []string
	// Provision, when set, makes the pool keep its own hosts (machines).
	Provision *Provision
	CreatedAt time.Time
	Meta
}

// Copy returns a deep copy.
func (p *Pool) Copy() *Pool {
	c := *p
	c.Drivers = slices.Clone(p.Drivers)
	if p.Provision != nil {
		pr := *p.Provision
		pr.Template = slices.Clone(p.Provision.Template)
		c.Provision = &pr
	}
	if p.Labels != nil {
		c.Labels = make(map[string]string, len(p.Labels))
		for k, v := range p.Labels {
			c.Labels[k] = v
		}
	}
	return &c
}

// App is the desired state of one app of one tenant. Spec is the current,
// normalized spec (its version fields equal those of version Version);
// Spec.Instances is never nil in the store.
type App struct {
	Tenant        string
	Name          string
	Spec          AppSpec
	Version       int // current version
	LatestVersion int // highest version ever created
	// Pending explains, when set, why the scheduler could not place every
	// instance the app wants.
	Pending string
	// CanaryFrom, while a canary update waits for promote or abort, is the
	// version it replaces (0: no canary in progress).
	CanaryFrom int
	// FailbackIndex is the Raft index of the last manual failback request
	// (wharf app failback): instances in failover pools placed before it
	// move back to the app's own pools.
	FailbackIndex uint64
	// Noticed are the troubles (version and reason) already told to the
	// tenant as an event, so that each is told once, not once per retry
	// or per instance. The newest maxNoticed are kept.
	Noticed []Notice
	// Stopped is set by a stop (wharf app stop): Spec.Instances is zero
	// and StoppedInstances the count a start brings back.
	Stopped          bool `json:",omitempty"`
	StoppedInstances int  `json:",omitempty"`
	// AutoscaleReason is why the autoscaler chose the instance count, ""
	// without a policy.
	AutoscaleReason string `json:",omitempty"`
	// Secrets are the app's secrets: name to value sealed with the data
	// key (additional data SecretAD), never plain in the store.
	Secrets map[string][]byte `json:",omitempty"`
	// SecretsRevision counts changes to Secrets; the version a change makes
	// references it (Spec.Secrets), never the values.
	SecretsRevision int `json:",omitempty"`
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Meta
}

// Copy returns a deep copy.
func (a *App) Copy() *App {
	c := *a
	c.Spec = copySpec(a.Spec)
	c.Noticed = slices.Clone(a.Noticed)
	c.Secrets = copySecrets(a.Secrets)
	return &c
}

// copySecrets returns a deep copy of an app's sealed secrets (nil for nil).
func copySecrets(m map[string][]byte) map[string][]byte {
	if m == nil {
		return nil
	}
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = slices.Clone(v)
	}
	return c
}

// Notice is one trouble of one app version told to its tenant.
type Notice struct {
	Version int
	Reason  string
}

// maxNoticed bounds App.Noticed.
const maxNoticed = 16

// AppVersion is one immutable version of an app.
type AppVersion struct {
	Tenant    string
	App       string
	Version   int
	Spec      VersionSpec
	CreatedAt time.Time
	Index     uint64
}

func copySpec(s AppSpec) AppSpec {
	c := s
	c.Command = append([]string(nil), s.Command...)
	if s.Env != nil {
		c.Env = make(map[string]string, len(s.Env))
		for k, v := range s.Env {
			c.Env[k] = v
		}
	}
	if s.Instances != nil {
		n := *s.Instances
		c.Instances = &n
	}
	c.Ports = append([]Port(nil), s.Ports...)
	if s.Health != nil {
		h := *s.Health
		h.Command = append([]string(nil), s.Health.Command...)
		c.Health = &h
	}
	c.Pools = append([]string(nil), s.Pools...)
	c.FailoverPools = append([]string(nil), s.FailoverPools...)
	c.Constraints = append([]string(nil), s.Constraints...)
	if s.Failover != nil {
		f := *s.Failover
		c.Failover = &f
	}
	if s.Strategy != nil {
		st := *s.Strategy
		c.Strategy = &st
	}
	c.Autoscale = s.Autoscale.Copy()
	return c
}
