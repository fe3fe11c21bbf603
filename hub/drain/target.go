package drain

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of drain a Target points at.
type Kind string

// Kinds of drains.
const (
	KindSyslogTCP Kind = "syslog"     // RFC 5424 over plain TCP
	KindSyslogTLS Kind = "syslog+tls" // RFC 5424 over TLS
	KindLoki      Kind = "loki"       // Loki push API over HTTP(S)
	KindES        Kind = "es"         // Elasticsearch bulk API over HTTP(S)
)

// MaxURLLen is the longest drain URL that Parse accepts, in bytes.
const MaxURLLen = 2048

// Defaults that Parse fills in.
const (
	DefaultLokiPath = "/loki/api/v1/push"
	DefaultESIndex  = "wharf-logs"
)

// Target is a validated drain URL.
type Target struct {
	Kind Kind
	// URL is the transport URL without the kind prefix: tcp://host:port or
	// tls://host:port for syslog; http(s)://[user:password@]host[:port]/path
	// for Loki, with the push path filled in; and
	// http(s)://[user:password@]host[:port]/index for Elasticsearch, with
	// the index filled in.
	URL *url.URL
	// Raw is the URL as given to Parse. It may hold a password: log String().
	Raw string
}

type scheme struct {
	kind      Kind
	transport string
}

var schemes = map[string]scheme{
	"syslog":     {KindSyslogTCP, "tcp"},
	"syslog+tcp": {KindSyslogTCP, "tcp"},
	"syslog+tls": {KindSyslogTLS, "tls"},
	"loki+http":  {KindLoki, "http"},
	"loki+https": {KindLoki, "https"},
	"es+http":    {KindES, "http"},
	"es+https":   {KindES, "https"},
}

const acceptedSchemes = "syslog, syslog+tcp, syslog+tls, loki+http, loki+https, es+http, es+https"

// Parse validates a drain URL. It accepts
//
//	syslog://host:port, syslog+tcp://host:port   RFC 5424 over plain TCP
//	syslog+tls://host:port                      RFC 5424 over TLS
//	loki+http://host[:port][/path]              path defaults to /loki/api/v1/push
//	loki+https://...
//	es+http://host[:port][/index]               index defaults to wharf-logs
//	es+https://...
//
// A user and password on a Loki or Elasticsearch URL become HTTP basic
// auth. Anything else is refused with an error that says why and never
// contains the password.
func Parse(raw string) (Target, error) {
	if strings.TrimSpace(raw) == "" {
		return Target{}, errors.New("drain URL is empty")
	}
	if len(raw) > MaxURLLen {
		return Target{}, fmt.Errorf("drain URL is %d bytes long, the limit is %d", len(raw), MaxURLLen)
	}
	if strings.TrimSpace(raw) != raw {
		return Target{}, errors.New("drain URL has leading or trailing spaces")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("drain URL is malformed%s", parseDetail(raw, err))
	}
	if u.Scheme == "" {
		return Target{}, fmt.Errorf("drain URL has no scheme (accepted: %s)", acceptedSchemes)
	}
	s, ok := schemes[u.Scheme]
	if !ok {
		return Target{}, fmt.Errorf("drain URL scheme %q is not supported (accepted: %s)", u.Scheme, acceptedSchemes)
	}
	if u.Opaque != "" {
		return Target{}, fmt.Errorf("drain URL must have the form %s://host:port", u.Scheme)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return Target{}, errors.New("drain URL must not have a query string")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return Target{}, errors.New("drain URL must not have a fragment")
	}
	host := u.Hostname()
	if host == "" {
		return Target{}, fmt.Errorf("drain URL has no host, expected %s://host:port", u.Scheme)
	}
	if err := checkHost(u.Host, host); err != nil {
		return Target{}, err
	}
	port := u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Target{}, fmt.Errorf("drain URL port %q is not a number in 1-65535", port)
		}
	}
	if strings.Contains(u.EscapedPath(), "@") {
		// Most likely a password with an unescaped '/' that cut the URL short.
		return Target{}, errors.New("drain URL path contains '@'; percent-encode '/', '?', '#' and '@' in the user and password")
	}

	t := &url.URL{Scheme: s.transport, Host: strings.TrimSuffix(u.Host, ":")}
	switch s.kind {
	case KindSyslogTCP, KindSyslogTLS:
		if port == "" {
			return Target{}, fmt.Errorf("syslog drain URL needs a port, as in %s://%s:514", u.Scheme, u.Host)
		}
		if u.User != nil {
			return Target{}, errors.New("syslog drain URL must not contain a user or password")
		}
		if u.Path != "" && u.Path != "/" {
			return Target{}, errors.New("syslog drain URL must not have a path")
		}
	case KindLoki:
		t.User = u.User
		t.Path, t.RawPath = u.Path, u.RawPath
		if t.Path == "" || t.Path == "/" {
			t.Path, t.RawPath = DefaultLokiPath, ""
		}
	case KindES:
		t.User = u.User
		index := strings.TrimPrefix(u.Path, "/")
		if index == "" {
			index = DefaultESIndex
		}
		if err := checkIndex(index); err != nil {
			return Target{}, err
		}
		t.Path = "/" + index
	}
	return Target{Kind: s.kind, URL: t, Raw: raw}, nil
}

// parseDetail explains a url.Parse error unless the URL has userinfo, whose
// password could then show up in the explanation.
func parseDetail(raw string, err error) string {
	if strings.Contains(raw, "@") {
		return " (check that '/', '?', '#' and '@' in the user and password are percent-encoded)"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return ": " + err.Error()
}

// checkHost accepts DNS-style names and IP literals.
func checkHost(hostport, host string) error {
	if strings.HasPrefix(hostport, "[") {
		if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
			return nil
		}
		return fmt.Errorf("drain URL host %q is not an IPv6 address", host)
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("drain URL host %q is not a host name or IP address", host)
		}
	}
	return nil
}

// checkIndex applies Elasticsearch's rules for index names.
func checkIndex(index string) error {
	switch {
	case len(index) > 255:
		return fmt.Errorf("elasticsearch index name is %d bytes long, the limit is 255", len(index))
	case index == "." || index == "..":
		return fmt.Errorf("elasticsearch index name must not be %q", index)
	case strings.ContainsAny(index[:1], "-_+"):
		return fmt.Errorf("elasticsearch index name %q must not start with '-', '_' or '+'", index)
	case !utf8.ValidString(index):
		return errors.New("elasticsearch index name must be valid UTF-8")
	case strings.ToLower(index) != index:
		return fmt.Errorf("elasticsearch index name %q must be lowercase", index)
	}
	if i := strings.IndexAny(index, "\\/*?\"<>| ,#:"); i >= 0 {
		return fmt.Errorf("elasticsearch index name %q must not contain %q", index, index[i:i+1])
	}
	return nil
}

// String returns the URL with the password replaced by "xxxxx". Parse
// accepts it again.
func (t Target) String() string {
	if t.URL == nil {
		return ""
	}
	u := *t.URL
	switch t.Kind {
	case KindSyslogTCP, KindSyslogTLS:
		u.Scheme = string(t.Kind)
	default:
		u.Scheme = string(t.Kind) + "+" + t.URL.Scheme
	}
	return u.Redacted()
}
