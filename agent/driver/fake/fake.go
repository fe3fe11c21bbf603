// Package fake is an in-memory driver for tests of everything around
// drivers (the agent's supervisor, the hub's scheduling, benchmarks with
// thousands of hosts): instances "run" as entries in a map, each with a
// real TCP listener on loopback so that health checks and address reports
// are true. Shared state (a Host) lets a test restart an agent and find its
// instances again, as a real runtime would.
package fake

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
)

// Host is what survives an agent restart: the instances "running" on it.
type Host struct {
	mu       sync.Mutex
	inst     map[string]*instance
	execCode int // what Exec returns
	startErr error
	attempts map[string]int // Start calls per instance id
}

type instance struct {
	spec    driver.Spec
	status  driver.Status
	ln      net.Listener
	started int // times started
}

// NewHost returns an empty host.
func NewHost() *Host { return &Host{inst: map[string]*instance{}, attempts: map[string]int{}} }

// Driver is a fake driver on a Host.
type Driver struct{ h *Host }

var _ driver.Driver = (*Driver)(nil)

// New returns a driver for h.
func New(h *Host) *Driver { return &Driver{h: h} }

// Name implements driver.Driver.
func (d *Driver) Name() string { return "fake" }

// Start implements driver.Driver.
func (d *Driver) Start(_ context.Context, spec driver.Spec) (driver.Status, error) {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	d.h.attempts[spec.InstanceID]++
	in := d.h.inst[spec.InstanceID]
	if in != nil && in.status.State == driver.StateRunning {
		return in.status, nil
	}
	if d.h.startErr != nil {
		return driver.Status{}, d.h.startErr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return driver.Status{}, err
	}
	go func() { // accept and close: enough for TCP health checks
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	if in == nil {
		in = &instance{spec: spec}
		d.h.inst[spec.InstanceID] = in
	}
	in.ln = ln
	in.started++
	ports := map[int]int{}
	for _, p := range spec.Ports {
		ports[p.ContainerPort] = port
	}
	in.status = driver.Status{InstanceID: spec.InstanceID, Tenant: spec.Tenant, App: spec.App, Version: spec.Version,
		State: driver.StateRunning, StartedAt: time.Now(), Ports: ports, Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	return in.status, nil
}

// Stop implements driver.Driver.
func (d *Driver) Stop(_ context.Context, id string, _ time.Duration) error {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	if in := d.h.inst[id]; in != nil {
		if in.ln != nil {
			in.ln.Close()
		}
		delete(d.h.inst, id)
	}
	return nil
}

// Inspect implements driver.Driver.
func (d *Driver) Inspect(_ context.Context, id string) (driver.Status, error) {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	if in := d.h.inst[id]; in != nil {
		return in.status, nil
	}
	return driver.Status{}, driver.ErrNotFound
}

// List implements driver.Driver.
func (d *Driver) List(context.Context) ([]driver.Status, error) {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	out := make([]driver.Status, 0, len(d.h.inst))
	for _, in := range d.h.inst {
		out = append(out, in.status)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out, nil
}

// Logs implements driver.Driver: fake instances write nothing.
func (d *Driver) Logs(_ context.Context, id string, _ driver.LogOptions, _ func(driver.LogLine) error) error {
	if _, err := d.Inspect(context.Background(), id); err != nil {
		return err
	}
	return nil
}

// Crash makes an instance exit with code, as a crashing process would.
func (h *Host) Crash(id string, code int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	in := h.inst[id]
	if in == nil {
		return fmt.Errorf("no instance %s", id)
	}
	in.ln.Close()
	in.status.State, in.status.ExitCode, in.status.FinishedAt = driver.StateExited, code, time.Now()
	return nil
}

// Started returns how many times an instance was started (0: unknown).
func (h *Host) Started(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in := h.inst[id]; in != nil {
		return in.started
	}
	return 0
}

// Running returns the ids of the instances that run, sorted.
func (h *Host) Running() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for id, in := range h.inst {
		if in.status.State == driver.StateRunning {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

var _ driver.Execer = (*Driver)(nil)

// Exec implements driver.Execer: it returns the host's exec code (see
// SetExecCode) for a running instance.
func (d *Driver) Exec(_ context.Context, id string, _ []string) (int, error) {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	in := d.h.inst[id]
	if in == nil || in.status.State != driver.StateRunning {
		return -1, driver.ErrNotFound
	}
	return d.h.execCode, nil
}

// SetExecCode sets what Exec returns from now on (0 at first).
func (h *Host) SetExecCode(code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.execCode = code
}

// FailStarts makes Start of an instance that does not run return err
// (nil: start again), as a runtime that cannot pull an image or run a
// command would (see driver.ImagePullError).
func (h *Host) FailStarts(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.startErr = err
}

// Attempts returns how many times Start was called for an instance,
// whether or not it started.
func (h *Host) Attempts(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts[id]
}
