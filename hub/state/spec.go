package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The types in this file are stored: they travel in Raft commands and
// snapshots as JSON under the names their tags give. Those names are the
// on-disk format (testdata/golden holds logs and snapshots every version
// must load): fields are added, never renamed or reused. The API has its
// own types (pkg/apitypes) and converts at its edge, so an API change never
// silently changes what is on disk.

// AppSpec is an app's desired state as the store keeps it: normalized (CPU,
// Memory and protocol defaults filled in) and validated by the API.
type AppSpec struct {
	Name      string            `json:"name"`
	Image     string            `json:"image,omitempty"`
	Command   []string          `json:"command,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Instances *int              `json:"instances,omitempty"` // never nil in the store
	CPU       int               `json:"cpu,omitempty"`       // millicores
	Memory    int               `json:"memory,omitempty"`    // MB
	Ports     []Port            `json:"ports,omitempty"`
	Health    *Health           `json:"health,omitempty"`

	Pools         []string   `json:"pools,omitempty"`
	Spread        string     `json:"spread,omitempty"` // "", "host", "zone" or "datacenter"
	Constraints   []string   `json:"constraints,omitempty"`
	FailoverPools []string   `json:"failover_pools,omitempty"`
	Failover      *Failover  `json:"failover,omitempty"`
	Strategy      *Strategy  `json:"strategy,omitempty"`
	Autoscale     *Autoscale `json:"autoscale,omitempty"`
	// Secrets is the revision of the app's secrets (App.SecretsRevision)
	// its version was made with; set by the store only, never by a spec.
	Secrets int `json:"secrets,omitempty"`
}

// Port is a port an app's instances listen on.
type Port struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol,omitempty"`
	HostPort      int    `json:"host_port,omitempty"`
}

// Health is an app's health check: exactly one of HTTP, TCP and Command.
type Health struct {
	HTTP     string   `json:"http,omitempty"`
	TCP      int      `json:"tcp,omitempty"`
	Command  []string `json:"command,omitempty"`
	Port     int      `json:"port,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
}

// Failover modes.
const (
	FailoverAvailability = "availability"
	FailoverFenced       = "fenced"
)

// DefaultFailbackHold is how long an app's own pools must have capacity
// again before an automatic failback.
const DefaultFailbackHold = 5 * time.Minute

// Failover says what a lost host means to the app.
type Failover struct {
	Mode          string   `json:"mode,omitempty"`
	MaxDisconnect Duration `json:"max_disconnect,omitempty"`
	Failback      string   `json:"failback,omitempty"` // "manual" or "auto"
	FailbackHold  Duration `json:"failback_hold,omitempty"`
}

// Strategy is how a new version replaces the current one.
type Strategy struct {
	Type           string   `json:"type,omitempty"` // "rolling", "canary" or "blue-green"
	MaxSurge       int      `json:"max_surge,omitempty"`
	MaxUnavailable int      `json:"max_unavailable,omitempty"`
	Canary         int      `json:"canary,omitempty"`
	Weight         int      `json:"weight,omitempty"`
	AutoRevert     bool     `json:"auto_revert,omitempty"`
	HealthDeadline Duration `json:"health_deadline,omitempty"`
}

// VersionSpec is what makes a version: changing any of it makes a new one.
type VersionSpec struct {
	Image   string            `json:"image,omitempty"`
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	CPU     int               `json:"cpu"`
	Memory  int               `json:"memory"`
	Ports   []Port            `json:"ports,omitempty"`
	Health  *Health           `json:"health,omitempty"`
	// Secrets is the revision of the app's secrets this version was made
	// with (0: none). Instances always get the app's current secrets, so
	// a rollback keeps them.
	Secrets int `json:"secrets,omitempty"`
}

// VersionFields returns the part of the spec that makes a version.
func (s *AppSpec) VersionFields() VersionSpec {
	return VersionSpec{Image: s.Image, Command: s.Command, Env: s.Env, CPU: s.CPU, Memory: s.Memory, Ports: s.Ports, Health: s.Health, Secrets: s.Secrets}
}

// Equal reports whether two version specs are the same version. Nil and
// empty collections are equal, except a health check's command, where nil
// and empty differ. It is reflect.DeepEqual after those collections are
// made nil when empty (TestVersionSpecEqual holds it to that), written out
// because every app update on every node asks it.
func (v VersionSpec) Equal(o VersionSpec) bool {
	return v.Image == o.Image && v.CPU == o.CPU && v.Memory == o.Memory && v.Secrets == o.Secrets &&
		slices.Equal(v.Command, o.Command) && maps.Equal(v.Env, o.Env) && slices.Equal(v.Ports, o.Ports) &&
		healthEqual(v.Health, o.Health)
}

func healthEqual(a, b *Health) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.HTTP == b.HTTP && a.TCP == b.TCP && a.Port == b.Port && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		(a.Command == nil) == (b.Command == nil) && slices.Equal(a.Command, b.Command)
}

// Quota bounds what a tenant may use; zero fields are unlimited (or, for
// logs, the hub's defaults).
type Quota struct {
	Instances int      `json:"instances,omitempty"`
	CPU       int      `json:"cpu,omitempty"`    // millicores
	Memory    int      `json:"memory,omitempty"` // MB
	LogBytes  int64    `json:"log_bytes,omitempty"`
	LogAge    Duration `json:"log_age,omitempty"`
}

// Role is an API token's role.
type Role string

// Roles. admin has no tenant; the others act within exactly one tenant.
const (
	RoleAdmin       Role = "admin"
	RoleTenantAdmin Role = "tenant-admin"
	RoleDeveloper   Role = "developer"
	RoleViewer      Role = "viewer"
)

// Duration is a time.Duration stored as a Go duration string ("30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MaxInstances bounds an app's instance count.
const MaxInstances = 10000
