package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Types are the provider types an account may have.
var Types = []string{"aws", "aliyun", "vsphere", "openstack", "ssh"}

// Template is a provisioned pool's machine template. One struct holds the
// keys of every type; Validate says which a type takes and needs. Values
// are names or inventory paths (cloud IDs are accepted too).
type Template struct {
	// aws: instance_type, image, subnet, security_groups, key_name.
	// aliyun: instance_type, image, vswitch, security_group.
	InstanceType   string     `json:"instance_type,omitempty"`
	Image          string     `json:"image,omitempty"`
	Subnet         string     `json:"subnet,omitempty"`
	SecurityGroups StringList `json:"security_groups,omitempty"`
	KeyName        string     `json:"key_name,omitempty"`
	VSwitch        string     `json:"vswitch,omitempty"`
	SecurityGroup  string     `json:"security_group,omitempty"`

	// vsphere: template, datacenter, datastore, resource_pool, folder, network.
	VMTemplate   string `json:"template,omitempty"`
	Datacenter   string `json:"datacenter,omitempty"`
	Datastore    string `json:"datastore,omitempty"`
	ResourcePool string `json:"resource_pool,omitempty"`
	Folder       string `json:"folder,omitempty"`
	Network      string `json:"network,omitempty"` // openstack too

	// openstack: flavor, image, network.
	Flavor string `json:"flavor,omitempty"`

	// ssh: hosts (HOST:PORT each).
	Hosts StringList `json:"hosts,omitempty"`
}

// StringList is a list that JSON may also give as one comma-separated
// string.
type StringList []string

// UnmarshalJSON takes ["a","b"] or "a,b".
func (l *StringList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = splitList(s)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a string or a list of strings")
	}
	*l = list
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

// templateKeys: per type, the keys it takes; required ones end in "!".
var templateKeys = map[string][]string{
	"aws":       {"instance_type!", "image!", "subnet", "security_groups", "key_name"},
	"aliyun":    {"instance_type!", "image!", "vswitch!", "security_group!"},
	"vsphere":   {"template!", "datacenter", "datastore", "resource_pool", "folder", "network"},
	"openstack": {"flavor!", "image!", "network"},
	"ssh":       {"hosts!"},
}

// DecodeTemplate decodes a template for a provider type: unknown keys, and
// keys the type does not take, are refused; required ones must be set.
func DecodeTemplate(typ string, raw json.RawMessage) (Template, error) {
	var t Template
	if err := decodeKeyed("template", typ, templateKeys, raw, &t); err != nil {
		return t, err
	}
	for _, h := range t.Hosts {
		if i := strings.LastIndexByte(h, ':'); i <= 0 || i == len(h)-1 {
			return t, fmt.Errorf("template: host %q: want HOST:PORT", h)
		}
	}
	return t, nil
}

// decodeKeyed decodes raw (a JSON object) into out, taking only the keys
// table names for typ and requiring those that end in "!". Errors name
// keys, never values.
func decodeKeyed(what, typ string, table map[string][]string, raw json.RawMessage, out any) error {
	keys, ok := table[typ]
	if !ok {
		return fmt.Errorf("unknown provider type %q (%s)", typ, strings.Join(Types, ", "))
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		raw = []byte("{}")
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(raw, &present); err != nil {
		return fmt.Errorf("%s: want a JSON object", what)
	}
	allowed := map[string]bool{}
	var required []string
	for _, k := range keys {
		name := strings.TrimSuffix(k, "!")
		allowed[name] = true
		if strings.HasSuffix(k, "!") {
			required = append(required, name)
		}
	}
	var unknown []string
	for k := range present {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s: %s takes %s, not %s", what, typ, strings.Join(names(keys), ", "), strings.Join(unknown, ", "))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: %s: want %s", what, te.Field, te.Type)
		}
		return fmt.Errorf("%s: not valid", what) // the message could quote a secret
	}
	var missing []string
	for _, k := range required {
		v, ok := present[k]
		if t := string(bytes.TrimSpace(v)); !ok || t == `""` || t == "[]" || t == "{}" || t == "null" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %s needs %s", what, typ, strings.Join(missing, ", "))
	}
	return nil
}

func names(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimSuffix(k, "!")
	}
	return out
}

// Credentials are an account's secrets. One struct holds the keys of every
// type; DecodeCredentials says which a type needs. They are sealed before
// they reach Raft and never returned by a read.
type Credentials struct {
	// aws: access_key_id, secret_access_key. aliyun: access_key_id,
	// access_key_secret.
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
	AccessKeySecret string `json:"access_key_secret,omitempty"`
	// vsphere: username, password. openstack: username, password,
	// project, domain.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Project  string `json:"project,omitempty"`
	Domain   string `json:"domain,omitempty"`
	// ssh: user, private_key (PEM), host_key_fingerprints
	// ({"HOST:PORT": "SHA256:..."}).
	User                string            `json:"user,omitempty"`
	PrivateKey          string            `json:"private_key,omitempty"`
	HostKeyFingerprints map[string]string `json:"host_key_fingerprints,omitempty"`
}

// credentialKeys: per type, the credential keys it takes (all required).
var credentialKeys = map[string][]string{
	"aws":       {"access_key_id!", "secret_access_key!"},
	"aliyun":    {"access_key_id!", "access_key_secret!"},
	"vsphere":   {"username!", "password!"},
	"openstack": {"username!", "password!", "project!", "domain!"},
	"ssh":       {"user!", "private_key!", "host_key_fingerprints!"},
}

// DecodeCredentials decodes an account's credentials for its type. The
// values are never part of an error.
func DecodeCredentials(typ string, raw json.RawMessage) (Credentials, error) {
	var c Credentials
	err := decodeKeyed("credentials", typ, credentialKeys, raw, &c)
	return c, err
}
