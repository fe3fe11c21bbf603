package apitypes

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Limits on an app's secrets: names are environment variable names.
const (
	MaxSecretValue = 64 << 10  // bytes per value
	MaxAppSecrets  = 256 << 10 // bytes per app, all values together
	MaxSecretCount = 256       // secrets per app
)

var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// SecretsRequest is the body of PUT /v1/apps/{name}/secrets: names and
// values merged into the app's secrets.
type SecretsRequest map[string]string

// Validate checks names and sizes (the app's total is checked against
// what it already holds by the hub).
func (r SecretsRequest) Validate() error {
	if len(r) == 0 {
		return FieldError("secrets", "give at least one secret: {\"NAME\": \"value\"}")
	}
	if len(r) > MaxSecretCount {
		return FieldError("secrets", "%d secrets in one request, over the limit of %d", len(r), MaxSecretCount)
	}
	names := make([]string, 0, len(r))
	for k := range r {
		names = append(names, k)
	}
	sort.Strings(names)
	total := 0
	for _, k := range names {
		if err := CheckSecretName(k); err != nil {
			return err
		}
		v := r[k]
		if len(v) > MaxSecretValue {
			return FieldError(k, "secret %s is %d bytes, over the limit of %d", k, len(v), MaxSecretValue)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return FieldError(k, "secret %s holds a NUL byte, which no environment variable can", k)
		}
		total += len(v)
	}
	if total > MaxAppSecrets {
		return FieldError("secrets", "the secrets total %d bytes, over the limit of %d per app", total, MaxAppSecrets)
	}
	return nil
}

// CheckSecretName checks that a secret's name is an environment variable
// name, and none of those the platform sets itself (PORT, PORT_<NAME>,
// HOSTNAME, WHARF_*).
func CheckSecretName(name string) error {
	if len(name) > 256 || !secretName.MatchString(name) {
		return FieldError(name, "secret name %q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most 256 characters)", name)
	}
	if ReservedEnvName(name) {
		return FieldError(name, "secret name %q is set by Wharf itself (PORT, PORT_<NAME>, HOSTNAME, WHARF_*)", name)
	}
	return nil
}

// ReservedEnvName reports whether Wharf sets the variable name in every
// instance itself.
func ReservedEnvName(name string) bool {
	return name == "PORT" || name == "HOSTNAME" || strings.HasPrefix(name, "PORT_") || strings.HasPrefix(name, "WHARF_")
}

// Secrets is what the API tells of an app's secrets: their names, never
// their values.
type Secrets struct {
	Tenant string   `json:"tenant"`
	App    string   `json:"app"`
	Names  []string `json:"names"`
	// Revision counts changes of the app's secrets; each made a version.
	Revision int `json:"revision"`
	// Version is the app's current version.
	Version int `json:"version"`
}

// ParseSecretArgs parses NAME=VALUE arguments (wharf secret set).
func ParseSecretArgs(args []string) (SecretsRequest, error) {
	out := SecretsRequest{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not NAME=VALUE", a)
		}
		if err := CheckSecretName(k); err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("secret %s given twice", k)
		}
		out[k] = v
	}
	return out, out.Validate()
}
