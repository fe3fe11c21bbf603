package apitypes

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// AppSpec is what a tenant asks for: the body of POST /v1/apps and
// PUT /v1/apps/{name}, and the content of wharf.yaml. Only Name and Image
// (or Command, for the exec driver) are required.
//
// The fields fall in two groups. Version fields (image, command, env, cpu,
// memory, ports, health) make up an immutable app version: changing any of
// them creates a new version. The others (instances, placement, failover,
// strategy) change the app without a new version.
type AppSpec struct {
	Name      string            `json:"name"`
	Image     string            `json:"image,omitempty"`
	Command   []string          `json:"command,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Instances *int              `json:"instances,omitempty"` // nil means 1 on create, unchanged on update
	CPU       int               `json:"cpu,omitempty"`       // millicores; 0 means the default (100)
	Memory    int               `json:"memory,omitempty"`    // MB; 0 means the default (128)
	Ports     []Port            `json:"ports,omitempty"`
	Health    *Health           `json:"health,omitempty"`

	Pools  []string `json:"pools,omitempty"`
	Spread string   `json:"spread,omitempty"` // "", "host", "zone" or "datacenter"
	// Constraints filter hosts: "zone!=b", "label.disk=ssd",
	// "datacenter in (dc1,dc2)", "label.gpu exists".
	Constraints   []string  `json:"constraints,omitempty"`
	FailoverPools []string  `json:"failover_pools,omitempty"`
	Failover      *Failover `json:"failover,omitempty"`
	Strategy      *Strategy `json:"strategy,omitempty"`
	// Autoscale, when set, makes the instance count the autoscaler's.
	Autoscale *Autoscale `json:"autoscale,omitempty"`
}

// Port is a port the app listens on inside its container or process.
type Port struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int    `json:"container_port"`
	Protocol      string `json:"protocol,omitempty"`  // "tcp" (default) or "udp"
	HostPort      int    `json:"host_port,omitempty"` // 0: chosen on the host
}

// Health is an app's readiness check. Exactly one of HTTP, TCP and Command is
// set. Port defaults to the first port.
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

// Failover says what a lost host means to the app.
type Failover struct {
	Mode          string   `json:"mode,omitempty"` // "availability" (default) or "fenced"
	MaxDisconnect Duration `json:"max_disconnect,omitempty"`
	Failback      string   `json:"failback,omitempty"` // "manual" (default) or "auto"
	// FailbackHold is how long the app's own pools must have stayed ready
	// before auto failback moves instances back from failover pools, so
	// nothing flaps. Zero: 5m.
	FailbackHold Duration `json:"failback_hold,omitempty"`
}

// DefaultFailbackHold is FailbackHold's default.
const DefaultFailbackHold = 5 * time.Minute

// Strategy says how a new version replaces the old one.
type Strategy struct {
	Type           string `json:"type,omitempty"` // "rolling" (default), "canary" or "blue-green"
	MaxSurge       int    `json:"max_surge,omitempty"`
	MaxUnavailable int    `json:"max_unavailable,omitempty"`
	Canary         int    `json:"canary,omitempty"` // canary instances
	Weight         int    `json:"weight,omitempty"` // canary share of traffic, percent
	// AutoRevert makes an update that fails go back to the version it
	// replaced: an instance of the new version failed, or was not ready
	// within HealthDeadline (default 1m) of its placement.
	AutoRevert     bool     `json:"auto_revert,omitempty"`
	HealthDeadline Duration `json:"health_deadline,omitempty"`
}

// Defaults for resources when a spec leaves them out.
const (
	DefaultCPU    = 100
	DefaultMemory = 128
	MaxInstances  = 10000
)

// Normalize fills in defaults so that two specs that mean the same compare equal.
func (s *AppSpec) Normalize() {
	if s.CPU == 0 {
		s.CPU = DefaultCPU
	}
	if s.Memory == 0 {
		s.Memory = DefaultMemory
	}
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = "tcp"
		}
	}
	if s.Health != nil && s.Health.Port == 0 && len(s.Ports) > 0 && len(s.Health.Command) == 0 && s.Health.TCP == 0 {
		s.Health.Port = s.Ports[0].ContainerPort
	}
	if s.Failover != nil && s.Failover.Mode == "" {
		s.Failover.Mode = FailoverAvailability
	}
	if s.Strategy != nil && s.Strategy.Type == "" {
		s.Strategy.Type = "rolling"
	}
	if s.Autoscale != nil {
		s.Autoscale.Normalize()
	}
}

// Validate checks the spec without looking at cluster state. It returns an
// *Error with status 400 naming the first bad field.
func (s *AppSpec) Validate() error {
	if err := CheckName("name", s.Name); err != nil {
		return err
	}
	if s.Image == "" && len(s.Command) == 0 {
		return FieldError("image", "image (or command, for the exec driver) is required")
	}
	if len(s.Image) > 512 || strings.ContainsAny(s.Image, " \t\n") {
		return FieldError("image", "invalid image reference %q", s.Image)
	}
	if len(s.Env) > 256 {
		return FieldError("env", "at most 256 environment variables")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return FieldError("env", "invalid environment variable name %q", k)
		}
	}
	if s.Instances != nil && (*s.Instances < 0 || *s.Instances > MaxInstances) {
		return FieldError("instances", "instances must be between 0 and %d", MaxInstances)
	}
	if s.CPU < 0 || s.CPU > 1_000_000 {
		return FieldError("cpu", "cpu is in millicores, between 1 and 1000000")
	}
	if s.Memory < 0 || s.Memory > 4_194_304 {
		return FieldError("memory", "memory is in MB, between 1 and 4194304")
	}
	seen := map[string]bool{}
	for _, p := range s.Ports {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return FieldError("ports", "container_port must be between 1 and 65535")
		}
		if p.HostPort < 0 || p.HostPort > 65535 {
			return FieldError("ports", "host_port must be between 0 and 65535")
		}
		if p.Protocol != "" && p.Protocol != "tcp" && p.Protocol != "udp" {
			return FieldError("ports", "protocol must be tcp or udp")
		}
		if p.Name != "" {
			if !ValidName(p.Name) {
				return FieldError("ports", "invalid port name %q", p.Name)
			}
			if seen[p.Name] {
				return FieldError("ports", "duplicate port name %q", p.Name)
			}
			seen[p.Name] = true
		}
	}
	if h := s.Health; h != nil {
		n := 0
		if h.HTTP != "" {
			n++
			if !strings.HasPrefix(h.HTTP, "/") {
				return FieldError("health", "health.http must be a path starting with /")
			}
		}
		if h.TCP != 0 {
			n++
			if h.TCP < 1 || h.TCP > 65535 {
				return FieldError("health", "health.tcp must be a port between 1 and 65535")
			}
		}
		if len(h.Command) > 0 {
			n++
		}
		if n != 1 {
			return FieldError("health", "health needs exactly one of http, tcp and command")
		}
		if h.Port < 0 || h.Port > 65535 {
			return FieldError("health", "health.port must be between 1 and 65535")
		}
		if h.HTTP != "" && h.Port == 0 && len(s.Ports) == 0 {
			return FieldError("health", "health.http needs health.port or a port")
		}
		if h.Interval < 0 || h.Timeout < 0 {
			return FieldError("health", "health durations must not be negative")
		}
	}
	if err := checkPools("pools", s.Pools); err != nil {
		return err
	}
	if len(s.Constraints) > 32 {
		return FieldError("constraints", "at most 32 constraints")
	}
	for _, c := range s.Constraints {
		if c == "" || len(c) > 256 {
			return FieldError("constraints", "constraint %q must be 1 to 256 characters", c)
		}
	}
	if err := checkPools("failover_pools", s.FailoverPools); err != nil {
		return err
	}
	switch s.Spread {
	case "", "host", "zone", "datacenter":
	default:
		return FieldError("spread", "spread must be host, zone or datacenter")
	}
	if f := s.Failover; f != nil {
		switch f.Mode {
		case "", FailoverAvailability, FailoverFenced:
		default:
			return FieldError("failover", "failover.mode must be availability or fenced")
		}
		if f.MaxDisconnect < 0 || f.FailbackHold < 0 {
			return FieldError("failover", "failover.max_disconnect and failback_hold must not be negative")
		}
		if f.Mode == FailoverFenced && f.MaxDisconnect == 0 {
			return FieldError("failover", "failover.mode fenced needs max_disconnect")
		}
		switch f.Failback {
		case "", "manual", "auto":
		default:
			return FieldError("failover", "failover.failback must be manual or auto")
		}
	}
	if st := s.Strategy; st != nil {
		switch st.Type {
		case "", "rolling", "canary", "blue-green":
		default:
			return FieldError("strategy", "strategy.type must be rolling, canary or blue-green")
		}
		if st.MaxSurge < 0 || st.MaxUnavailable < 0 || st.Canary < 0 {
			return FieldError("strategy", "strategy counts must not be negative")
		}
		if st.Weight < 0 || st.Weight > 100 {
			return FieldError("strategy", "strategy.weight is a percentage, 0 to 100")
		}
		if st.HealthDeadline < 0 {
			return FieldError("strategy", "strategy.health_deadline must not be negative")
		}
	}
	if s.Autoscale != nil {
		return s.Autoscale.Validate()
	}
	return nil
}

func checkPools(field string, pools []string) error {
	seen := map[string]bool{}
	for _, p := range pools {
		if !ValidName(p) {
			return FieldError(field, "invalid pool name %q", p)
		}
		if seen[p] {
			return FieldError(field, "pool %q listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

// VersionFields returns the part of the spec that makes up an immutable
// version, for comparison.
func (s *AppSpec) VersionFields() VersionSpec {
	return VersionSpec{Image: s.Image, Command: s.Command, Env: s.Env, CPU: s.CPU, Memory: s.Memory, Ports: s.Ports, Health: s.Health}
}

// VersionSpec is the immutable part of an app: one version.
type VersionSpec struct {
	Image   string            `json:"image,omitempty"`
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	CPU     int               `json:"cpu"`
	Memory  int               `json:"memory"`
	Ports   []Port            `json:"ports,omitempty"`
	Health  *Health           `json:"health,omitempty"`
}

// Equal reports whether two version specs are the same version. Nil and
// empty collections are equal.
func (v VersionSpec) Equal(o VersionSpec) bool {
	norm := func(x VersionSpec) VersionSpec {
		if len(x.Command) == 0 {
			x.Command = nil
		}
		if len(x.Env) == 0 {
			x.Env = nil
		}
		if len(x.Ports) == 0 {
			x.Ports = nil
		}
		return x
	}
	return reflect.DeepEqual(norm(v), norm(o))
}

// App is an app as the API returns it: the current spec plus bookkeeping.
type App struct {
	AppSpec
	Tenant string `json:"tenant"`
	// Version is the current version number (from 1).
	Version int `json:"version"`
	// LatestVersion is the highest version number ever created.
	LatestVersion int `json:"latest_version"`
	// CanaryFrom, while a canary update waits for promote or abort, is
	// the version it replaces.
	CanaryFrom int `json:"canary_from,omitempty"`
	// Pending explains why some instances cannot be placed yet ("" when
	// all are placed).
	Pending string `json:"pending,omitempty"`
	// Stopped is set while the app is stopped (wharf app stop): it runs no
	// instance, and a start brings back StoppedInstances.
	Stopped          bool `json:"stopped,omitempty"`
	StoppedInstances int  `json:"stopped_instances,omitempty"`
	// AutoscaleReason says why the autoscaler chose the instance count
	// (while a policy is set).
	AutoscaleReason string `json:"autoscale_reason,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// AppVersion is one immutable version of an app.
type AppVersion struct {
	Version   int         `json:"version"`
	Spec      VersionSpec `json:"spec"`
	CreatedAt time.Time   `json:"created_at"`
	Index     uint64      `json:"index"`
}

// Deployment is one entry of GET /v1/apps/{name}/history: a change of the
// app's current version or of its instance count.
type Deployment struct {
	Index     uint64    `json:"index"`
	Kind      string    `json:"kind"` // create|update|canary|promote|abort|rollback|revert|scale
	Version   int       `json:"version"`
	From      int       `json:"from,omitempty"`
	Instances int       `json:"instances"`
	Strategy  string    `json:"strategy,omitempty"`
	Message   string    `json:"message"`
	Time      time.Time `json:"time"`
}

// ScaleRequest is the body of POST /v1/apps/{name}/scale.
type ScaleRequest struct {
	Instances *int `json:"instances"`
}

// Validate checks the request.
func (r *ScaleRequest) Validate() error {
	if r.Instances == nil {
		return FieldError("instances", "instances is required")
	}
	if *r.Instances < 0 || *r.Instances > MaxInstances {
		return FieldError("instances", "instances must be between 0 and %d", MaxInstances)
	}
	return nil
}

// RollbackRequest is the body of POST /v1/apps/{name}/rollback.
type RollbackRequest struct {
	Version int `json:"version"`
}

// Validate checks the request.
func (r *RollbackRequest) Validate() error {
	if r.Version < 1 {
		return FieldError("version", "version must be 1 or more")
	}
	return nil
}

// String implements fmt.Stringer.
func (a *App) String() string { return fmt.Sprintf("%s/%s v%d", a.Tenant, a.Name, a.Version) }

// Instance is one instance of an app, as GET /v1/apps/{name}/instances
// returns it.
type Instance struct {
	ID       string `json:"id"`
	Host     string `json:"host"`
	HostName string `json:"host_name"`
	Version  int    `json:"version"`
	// State: pending, starting, running, stopping, stopped, failed, or
	// lost (InstanceLost: its host is down or cut off, so what it last
	// reported no longer holds; never ready).
	State    string `json:"state"`
	Ready    bool   `json:"ready"`
	Address  string `json:"address,omitempty"`
	Restarts int    `json:"restarts"`
	Desired  string `json:"desired"` // "run" or "stop"
	Message  string `json:"message,omitempty"`
	// Reason is a short code for why the instance is not running or not
	// ready (one of the Reason constants); "" when nothing is wrong.
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// InstanceLost is the state of an instance whose host is down or cut off,
// until the host reports again.
const InstanceLost = "lost"

// Reasons an instance is not running or not ready (Instance.Reason).
const (
	ReasonImagePull   = "image_pull"   // the image could not be pulled
	ReasonStartFailed = "start_failed" // the driver could not start it (bad command, bad spec)
	ReasonCrashLoop   = "crash_loop"   // it keeps exiting; restarts back off
	ReasonUnhealthy   = "unhealthy"    // it runs but its health check fails
	ReasonNoDriver    = "no_driver"    // no host of its pools has a driver that can run it
	ReasonHostLost    = "host_lost"    // its host is down or cut off
)
