package state

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Secrets commands: an app's secrets change (Raft command types 70–74 are
// theirs).
const (
	SecretsSetType    MessageType = 70
	SecretsUnsetType  MessageType = 71
	SecretsResealType MessageType = 72
)

// Limits on an app's secrets. Values are counted as sealed by
// internal/seal: the plain size plus SealOverhead.
const (
	MaxSecretValue = 64 << 10  // bytes per value
	MaxAppSecrets  = 256 << 10 // bytes per app, all values together
	MaxSecretCount = 256       // secrets per app
	// SealOverhead is what sealing adds to a value (version, key id,
	// nonce, GCM tag).
	SealOverhead = 1 + 4 + 12 + 16
)

var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckSecretName reports whether name can be an environment variable's
// name, as every secret's must, and is none of those Wharf sets itself.
func CheckSecretName(name string) error {
	if len(name) > 256 || !secretName.MatchString(name) {
		return fmt.Errorf("secret name %q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most 256 characters)", name)
	}
	if name == "PORT" || name == "HOSTNAME" || strings.HasPrefix(name, "PORT_") || strings.HasPrefix(name, "WHARF_") {
		return fmt.Errorf("secret name %q is set by Wharf itself (PORT, PORT_<NAME>, HOSTNAME, WHARF_*)", name)
	}
	return nil
}

// SecretsSetRequest merges secrets into an app's: each value was sealed
// by the API node with the data key (additional data SecretAD), never
// plain in the log. The change makes a new version that references the new
// secrets revision, rolled out like any new version. Not found without the
// app; refused (422) for a bad name, a value or app over the limits.
type SecretsSetRequest struct {
	Tenant string
	App    string
	Sealed map[string][]byte
	Time   time.Time
}

// SecretsUnsetRequest removes secrets from an app, which makes a new
// version as SecretsSetRequest does. Not found without the app or when
// one of Names is not among its secrets (nothing is removed then).
type SecretsUnsetRequest struct {
	Tenant string
	App    string
	Names  []string
	Time   time.Time
}

// SecretsResealRequest replaces an app's sealed values with the same
// values sealed under the current data key (after a key rotation): no new
// version, since no value changes. Conflict when the app changed since
// ModifyIndex; names it lacks are refused.
type SecretsResealRequest struct {
	Tenant      string
	App         string
	Sealed      map[string][]byte
	ModifyIndex uint64
}

// SecretAD is the additional data an app's secret is sealed with: a sealed
// value copied to another app or name does not open.
func SecretAD(tenant, app, name string) []byte {
	return []byte("wharf app secret " + tenant + "/" + app + "/" + name)
}

// SecretNames returns the names of an app's secrets, sorted.
func (a *App) SecretNames() []string {
	names := slices.Collect(maps.Keys(a.Secrets))
	sort.Strings(names)
	return names
}

func (w *writer) secretsSet(r *SecretsSetRequest) *Error {
	if len(r.Sealed) == 0 {
		return &Error{Kind: KindRefused, Msg: "no secrets given"}
	}
	for name, v := range r.Sealed {
		if err := CheckSecretName(name); err != nil {
			return &Error{Kind: KindRefused, Field: name, Msg: err.Error()}
		}
		if len(v) < SealOverhead {
			return &Error{Kind: KindRefused, Field: name, Msg: "secret " + name + " is not a sealed value"}
		}
		if len(v)-SealOverhead > MaxSecretValue {
			return &Error{Kind: KindRefused, Field: name, Msg: fmt.Sprintf("secret %s is %d bytes, over the limit of %d", name, len(v)-SealOverhead, MaxSecretValue)}
		}
	}
	return w.changeSecrets(r.Tenant, r.App, r.Time, func(s map[string][]byte) *Error {
		for name, v := range r.Sealed {
			s[name] = slices.Clone(v)
		}
		return nil
	}, fmt.Sprintf("secrets %v set", sortedKeys(r.Sealed)))
}

func (w *writer) secretsUnset(r *SecretsUnsetRequest) *Error {
	if len(r.Names) == 0 {
		return &Error{Kind: KindRefused, Msg: "no secret names given"}
	}
	return w.changeSecrets(r.Tenant, r.App, r.Time, func(s map[string][]byte) *Error {
		for _, name := range r.Names {
			if _, ok := s[name]; !ok {
				return &Error{Kind: KindNotFound, Field: name, Msg: fmt.Sprintf("app %s has no secret %s", r.App, name)}
			}
			delete(s, name)
		}
		return nil
	}, fmt.Sprintf("secrets %v removed", r.Names))
}

func sortedKeys(m map[string][]byte) []string {
	names := slices.Collect(maps.Keys(m))
	sort.Strings(names)
	return names
}

// changeSecrets applies change to a copy of the app's secrets, checks the
// limits, and makes the new version that references the new revision (the
// instances of which the agents start with the new values).
func (w *writer) changeSecrets(tenant, name string, at time.Time, change func(map[string][]byte) *Error, what string) *Error {
	a, e := w.app(tenant, name)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", name)
	}
	n := a.Copy()
	if n.Secrets == nil {
		n.Secrets = map[string][]byte{}
	}
	if e := change(n.Secrets); e != nil {
		return e
	}
	total := 0
	for _, v := range n.Secrets {
		total += len(v) - SealOverhead
	}
	if len(n.Secrets) > MaxSecretCount {
		return &Error{Kind: KindRefused, Msg: fmt.Sprintf("app %s would have %d secrets, over the limit of %d", name, len(n.Secrets), MaxSecretCount)}
	}
	if total > MaxAppSecrets {
		return &Error{Kind: KindRefused, Msg: fmt.Sprintf("app %s's secrets would total %d bytes, over the limit of %d", name, total, MaxAppSecrets)}
	}
	if len(n.Secrets) == 0 {
		n.Secrets = nil
	}
	n.SecretsRevision++
	n.Spec.Secrets = n.SecretsRevision
	n.LatestVersion++
	n.Version = n.LatestVersion
	n.UpdatedAt = at
	// A new version amid a canary replaces the canary; the base stays.
	if st := n.Spec.Strategy; st != nil && st.Type == "canary" {
		if a.CanaryFrom == 0 {
			n.CanaryFrom = a.Version
		}
	} else {
		n.CanaryFrom = 0
	}
	v := &AppVersion{Tenant: n.Tenant, App: n.Name, Version: n.Version, Spec: n.Spec.VersionFields(), CreatedAt: at, Index: w.index}
	if e := w.insert(TableAppVersions, v); e != nil {
		return e
	}
	if e := w.replaceApp(a, n); e != nil {
		return e
	}
	kind, msg := DeployUpdate, fmt.Sprintf("version %d replaces version %d: %s", n.Version, a.Version, what)
	if n.CanaryFrom != 0 {
		kind, msg = DeployCanary, fmt.Sprintf("version %d as canary beside version %d: %s", n.Version, n.CanaryFrom, what)
	}
	return w.record(n, kind, a.Version, msg, at)
}

func (w *writer) secretsReseal(r *SecretsResealRequest) *Error {
	a, e := w.app(r.Tenant, r.App)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", r.App)
	}
	if a.ModifyIndex != r.ModifyIndex {
		return Errorf(KindConflict, "app %s changed since it was read (index %d, now %d)", a.Name, r.ModifyIndex, a.ModifyIndex)
	}
	n := a.Copy()
	for name, v := range r.Sealed {
		old, ok := n.Secrets[name]
		if !ok {
			return &Error{Kind: KindRefused, Field: name, Msg: fmt.Sprintf("app %s has no secret %s", a.Name, name)}
		}
		if len(v) != len(old) {
			return &Error{Kind: KindRefused, Field: name, Msg: fmt.Sprintf("re-sealed secret %s is not the same size", name)}
		}
		n.Secrets[name] = slices.Clone(v)
	}
	w.meta(&n.Meta, &a.Meta)
	return w.insert(TableApps, n)
}
