package apitypes

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ProviderTypes are the clouds a provider account may be in.
var ProviderTypes = []string{"aws", "aliyun", "vsphere", "openstack", "ssh"}

// ProviderRequest is the body of POST /v1/providers and PUT
// /v1/providers/{name} (the whole account, credentials included).
type ProviderRequest struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Region   string `json:"region,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	// Credentials is the type's credentials object (aws: access_key_id,
	// secret_access_key; ...). Never returned by a read.
	Credentials json.RawMessage `json:"credentials"`
}

// Validate checks the request without looking at cluster state or at the
// credentials' keys (the hub checks those per type).
func (r *ProviderRequest) Validate() error {
	if err := CheckName("name", r.Name); err != nil {
		return err
	}
	if !slices.Contains(ProviderTypes, r.Type) {
		return FieldError("type", "unknown provider type %q (%s)", r.Type, strings.Join(ProviderTypes, ", "))
	}
	if len(r.Region) > 63 {
		return FieldError("region", "region is longer than 63 characters")
	}
	if r.Endpoint != "" {
		u, err := url.Parse(r.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return FieldError("endpoint", "endpoint must be an http:// or https:// URL")
		}
	}
	if t := bytes.TrimSpace(r.Credentials); len(t) == 0 || t[0] != '{' {
		return FieldError("credentials", "credentials must be a JSON object")
	}
	return nil
}

// Provider is a provider account as reads show it: Credentials is "set",
// never the credentials.
type Provider struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Region      string `json:"region,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	Insecure    bool   `json:"insecure,omitempty"`
	Credentials string `json:"credentials"`
	// Pools are the pools whose provision uses the account.
	Pools       []string  `json:"pools,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// CredentialsSet is what reads show in place of an account's credentials.
const CredentialsSet = "set"

// Provision makes a pool keep its own hosts, created in a provider account
// from a template.
type Provision struct {
	Provider string `json:"provider"`
	// Template is the provider type's machine template (aws:
	// instance_type, image, subnet, security_groups, key_name; ...).
	Template       json.RawMessage `json:"template"`
	MinHosts       int             `json:"min_hosts"`
	MaxHosts       int             `json:"max_hosts"`
	ScaleDownAfter Duration        `json:"scale_down_after,omitempty"`
	BootTimeout    Duration        `json:"boot_timeout,omitempty"`
}

// Provision defaults.
const (
	DefaultScaleDownAfter = 10 * time.Minute
	DefaultBootTimeout    = 10 * time.Minute
)

// Validate checks the provision and fills in the default durations.
func (p *Provision) Validate() error {
	if err := CheckName("provision.provider", p.Provider); err != nil {
		return err
	}
	if t := bytes.TrimSpace(p.Template); len(t) == 0 || t[0] != '{' {
		return FieldError("provision.template", "provision.template must be a JSON object")
	}
	if p.MaxHosts < 1 || p.MaxHosts > 10000 {
		return FieldError("provision.max_hosts", "provision.max_hosts must be between 1 and 10000")
	}
	if p.MinHosts < 0 || p.MinHosts > p.MaxHosts {
		return FieldError("provision.min_hosts", "provision.min_hosts must be between 0 and max_hosts (%d)", p.MaxHosts)
	}
	if p.ScaleDownAfter < 0 || p.BootTimeout < 0 {
		return FieldError("provision", "scale_down_after and boot_timeout must not be negative")
	}
	if p.ScaleDownAfter == 0 {
		p.ScaleDownAfter = Duration(DefaultScaleDownAfter)
	}
	if p.BootTimeout == 0 {
		p.BootTimeout = Duration(DefaultBootTimeout)
	}
	return nil
}

// Machine is a host Wharf created (or installed) for a provisioned pool,
// as GET /v1/machines returns it.
type Machine struct {
	ID         string    `json:"id"`
	Pool       string    `json:"pool"`
	Provider   string    `json:"provider"`
	ProviderID string    `json:"provider_id"`
	State      string    `json:"state"` // creating, booting, ready, draining, deleting, failed
	Host       string    `json:"host"`  // the host id once its agent enrolled
	CreatedAt  time.Time `json:"created_at"`
	Error      string    `json:"error"`
	// StateSince is when the machine entered its state.
	StateSince  time.Time `json:"state_since"`
	ModifyIndex uint64    `json:"modify_index"`
}
