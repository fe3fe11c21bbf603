package scheduler

import (
	"errors"
	"maps"
	"slices"
)

// Host is a machine (or a whole Kubernetes cluster) as the scheduler sees
// it.
type Host struct {
	ID         string
	Name       string
	Pool       string
	Datacenter string
	Zone       string // "" when the provider reports none
	// Ready is true when the host takes new instances: its state is ready
	// and no admin is draining it.
	Ready bool
	// Down is true when the host is known lost: its
	// instances no longer count and are replaced elsewhere. A host that is
	// only suspect is neither Ready nor Down: it takes nothing new but
	// keeps its instances.
	Down   bool
	Labels map[string]string
	// Drivers are the drivers the host's agent runs instances with
	// (DriverDocker, ...): only apps one of them runs go there. Empty: not
	// reported, and not judged.
	Drivers []string
	CPU     int // capacity in millicores
	Memory  int // capacity in MB
	// UsedCPU and UsedMemory are held by instances the State does not
	// list (a caller that keeps per-host totals lists only the instances
	// of the apps it plans); zero when every instance is listed.
	UsedCPU    int
	UsedMemory int
}

// Validate reports whether h can be scheduled onto.
func (h *Host) Validate() error {
	switch {
	case h.ID == "":
		return errors.New("host: empty id")
	case h.CPU < 0 || h.Memory < 0:
		return errors.New("host " + h.ID + ": negative capacity")
	}
	return nil
}

// Copy returns a deep copy.
func (h *Host) Copy() *Host {
	c := *h
	c.Labels = maps.Clone(h.Labels)
	c.Drivers = slices.Clone(h.Drivers)
	return &c
}

// schedulable reports whether new instances may go to h.
func (h *Host) schedulable() bool { return h.Ready && !h.Down }

// label names h for humans: its name, or its id when it has none.
func (h *Host) label() string {
	if h.Name != "" {
		return h.Name
	}
	return h.ID
}
