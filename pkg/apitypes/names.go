package apitypes

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidName reports whether s is a DNS label (RFC 1123): lower-case letters,
// digits and '-', 1 to 63 characters, starting and ending alphanumeric. Tenant,
// pool and app names are DNS labels because they appear in route host names.
func ValidName(s string) bool { return dnsLabel.MatchString(s) }

// CheckName returns a 400 error naming field when s is not a valid name.
func CheckName(field, s string) error {
	if s == "" {
		return FieldError(field, "%s is required", field)
	}
	if !ValidName(s) {
		return FieldError(field, "%q is not a valid name: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit", s)
	}
	return nil
}

// Duration is a time.Duration that reads and writes Go duration strings
// ("1h", "250ms") in JSON and YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String implements fmt.Stringer.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler. It accepts a Go duration string.
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
