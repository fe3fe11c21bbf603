package exec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/internal/atomicfile"
)

// Files in an instance's directory, <DataDir>/exec/<instance id>/.
const (
	fileState  = "state.json"
	fileStdout = "stdout.log"
	fileStderr = "stderr.log"
	dirWork    = "work" // the instance's working directory
)

// state is what the driver and the supervisor know of one instance, kept in
// state.json so that a restarted agent finds it. The driver writes it before
// it launches a supervisor; from then on only that supervisor writes it,
// until it exits. Writes replace the file atomically.
type state struct {
	HostID     string      `json:"host_id"`
	Spec       driver.Spec `json:"spec"`
	HostPorts  []int       `json:"host_ports"` // per spec port (one when the spec has none); [0] is PORT
	Env        []string    `json:"env"`        // the instance's whole environment
	Isolated   bool        `json:"isolated"`
	CgroupRoot string      `json:"cgroup_root,omitempty"`
	Cgroups    []string    `json:"cgroups,omitempty"` // cgroup directories, with Isolated
	Launch     int         `json:"launch"`            // counts supervisor launches

	// Written by the supervisor. A pid is only believed together with its
	// start time (field 22 of /proc/<pid>/stat), which a reused pid lacks.
	ShimPID    int       `json:"shim_pid,omitempty"`
	ShimStart  uint64    `json:"shim_start,omitempty"`
	PID        int       `json:"pid,omitempty"`
	PIDStart   uint64    `json:"pid_start,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	Exited     bool      `json:"exited,omitempty"`
	ExitCode   int       `json:"exit_code,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
	Error      string    `json:"error,omitempty"` // why the last launch failed
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileState))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, fileState), err)
	}
	return &st, nil
}

func writeState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, fileState), b, 0o600)
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validID keeps instance ids usable as directory, cgroup and host names.
func validID(id string) error {
	if !dnsLabel.MatchString(id) {
		return fmt.Errorf("instance id %q is not a DNS label", id)
	}
	return nil
}

// portEnv is the variable that carries a named port's host port: PORT_HTTP
// for "http", PORT_ADMIN_API for "admin-api".
func portEnv(name string) string {
	var b strings.Builder
	b.WriteString("PORT_")
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// defaultPath is PATH for instances whose spec sets none; the agent's own
// environment never leaks into an instance.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// environ builds an instance's environment: defaults, then the spec's
// variables, then what the driver owns (PORT, PORT_<NAME>, HOSTNAME).
func environ(spec driver.Spec, hostPorts []int) []string {
	m := map[string]string{"PATH": defaultPath, "HOME": "/"}
	for k, v := range spec.Env {
		m[k] = v
	}
	m["HOSTNAME"] = spec.InstanceID
	if len(hostPorts) > 0 {
		m["PORT"] = fmt.Sprint(hostPorts[0])
	}
	for i, p := range spec.Ports {
		if p.Name != "" && i < len(hostPorts) {
			m[portEnv(p.Name)] = fmt.Sprint(hostPorts[i])
		}
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
