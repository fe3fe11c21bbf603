package apitypes

import (
	"regexp"
	"time"
)

// Pool is a named group of hosts in one datacenter that apps are placed on.
type Pool struct {
	Name       string            `json:"name"`
	Datacenter string            `json:"datacenter"`
	Region     string            `json:"region,omitempty"`
	Provider   string            `json:"provider,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Drivers, when set, are the drivers the pool's hosts run (docker,
	// exec, kubernetes): apps no driver of them can run are refused.
	Drivers []string `json:"drivers,omitempty"`
	// Provision, when set, makes the pool keep its own hosts.
	Provision *Provision `json:"provision,omitempty"`

	// What GET /v1/pools/{name} adds: capacity and usage of its hosts,
	// hosts and machines by state.
	Capacity        *Capacity      `json:"capacity,omitempty"`
	Usage           *Usage         `json:"usage,omitempty"`
	HostsByState    map[string]int `json:"hosts_by_state,omitempty"`
	MachinesByState map[string]int `json:"machines_by_state,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Capacity is what a pool's ready hosts offer: CPU in millicores, memory
// in MB.
type Capacity struct {
	CPU    int `json:"cpu"`
	Memory int `json:"memory"`
}

// Usage is what the live instances on a pool's hosts hold.
type Usage struct {
	CPU       int `json:"cpu"`
	Memory    int `json:"memory"`
	Instances int `json:"instances"`
}

// Providers a pool may name. "" means unspecified (hosts enrolled by hand).
var Providers = []string{"", "aws", "aliyun", "vsphere", "openstack", "ssh", "baremetal", "kubernetes"}

// PoolRequest is the body of POST /v1/pools.
type PoolRequest struct {
	Name       string            `json:"name"`
	Datacenter string            `json:"datacenter"`
	Region     string            `json:"region,omitempty"`
	Provider   string            `json:"provider,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Drivers, when set, are the drivers the pool's hosts run.
	Drivers []string `json:"drivers,omitempty"`
	// Provision, when set, makes the pool keep its own hosts; the pool's
	// provider is then optional and, when given, the account's type.
	Provision *Provision `json:"provision,omitempty"`
}

// Validate checks the request without looking at cluster state. A pool
// without a datacenter is placed in "dc1".
func (r *PoolRequest) Validate() error {
	if err := CheckName("name", r.Name); err != nil {
		return err
	}
	if r.Datacenter == "" {
		r.Datacenter = "dc1"
	}
	if err := CheckName("datacenter", r.Datacenter); err != nil {
		return err
	}
	if r.Region != "" && len(r.Region) > 63 {
		return FieldError("region", "region is longer than 63 characters")
	}
	ok := false
	for _, p := range Providers {
		ok = ok || p == r.Provider
	}
	if !ok {
		return FieldError("provider", "unknown provider %q (aws, aliyun, vsphere, openstack, ssh, baremetal, kubernetes)", r.Provider)
	}
	if r.Provision != nil {
		if err := r.Provision.Validate(); err != nil {
			return err
		}
	}
	return CheckLabels("labels", r.Labels)
}

var labelKey = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9_./]{0,61}[a-zA-Z0-9])?$`)

// CheckLabels validates label keys and values.
func CheckLabels(field string, labels map[string]string) error {
	if len(labels) > 64 {
		return FieldError(field, "at most 64 labels")
	}
	for k, v := range labels {
		if !labelKey.MatchString(k) {
			return FieldError(field, "invalid label key %q", k)
		}
		if len(v) > 253 {
			return FieldError(field, "label %q: value longer than 253 characters", k)
		}
	}
	return nil
}
