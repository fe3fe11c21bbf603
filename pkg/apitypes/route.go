package apitypes

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"time"
)

// RouteRequest is the body of POST /v1/apps/{name}/routes: an HTTP route
// ({"host", "path"}) or a TCP one ({"tcp": true, "port", "target_port"}).
type RouteRequest struct {
	Host       string `json:"host,omitempty"`
	Path       string `json:"path,omitempty"`
	TCP        bool   `json:"tcp,omitempty"`
	Port       int    `json:"port,omitempty"`        // 0: the lowest free router port
	TargetPort int    `json:"target_port,omitempty"` // 0: the app's first port
}

// TCP route ports.
const (
	TCPPortMin = 30000
	TCPPortMax = 32767
)

// Normalize lower-cases the host and cleans the path.
func (r *RouteRequest) Normalize() {
	r.Host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r.Host)), ".")
	if !r.TCP {
		if r.Path == "" {
			r.Path = "/"
		}
		if len(r.Path) > 1 {
			r.Path = strings.TrimSuffix(r.Path, "/")
		}
	}
}

// Validate checks a normalized request.
func (r *RouteRequest) Validate() error {
	if r.TCP {
		switch {
		case r.Host != "" || r.Path != "":
			return FieldError("host", "a TCP route has no host or path")
		case r.Port != 0 && (r.Port < TCPPortMin || r.Port > TCPPortMax):
			return FieldError("port", "port must be between %d and %d", TCPPortMin, TCPPortMax)
		case r.TargetPort < 0 || r.TargetPort > 65535:
			return FieldError("target_port", "target_port must be between 1 and 65535")
		}
		return nil
	}
	if r.Port != 0 || r.TargetPort != 0 {
		return FieldError("port", "port and target_port are for TCP routes (\"tcp\": true)")
	}
	if err := ValidDomain(r.Host, false); err != nil {
		return err
	}
	return validPath(r.Path)
}

// ValidDomain checks a domain name: lower-case DNS labels, at least two of
// them; a leading "*." only when wildcard is allowed, and then over at
// least two labels (*.example.com, not *.com).
func ValidDomain(d string, wildcard bool) error {
	if d == "" {
		return FieldError("host", "a domain is required")
	}
	if len(d) > 253 {
		return FieldError("host", "domain %q is longer than 253 characters", d[:32]+"...")
	}
	rest := d
	if strings.HasPrefix(d, "*.") {
		if !wildcard {
			return FieldError("host", "wildcard domains cannot be routed (%s); route each name", d)
		}
		rest = d[2:]
	}
	labels := strings.Split(rest, ".")
	if len(labels) < 2 {
		return FieldError("host", "domain %q needs at least two labels", d)
	}
	for _, l := range labels {
		if !ValidName(l) {
			return FieldError("host", "domain %q: %q is not a DNS label (a-z, 0-9, '-', at most 63)", d, l)
		}
	}
	return nil
}

func validPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return FieldError("path", "path must start with /")
	case len(p) > 256:
		return FieldError("path", "path is longer than 256 characters")
	case strings.ContainsAny(p, "?#*% \t\r\n"):
		return FieldError("path", "path %q may not contain ?, #, *, %%, or spaces", p)
	case strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.HasSuffix(p, "/."):
		return FieldError("path", "path %q is not clean", p)
	}
	return nil
}

// Route is one of an app's routes. The default route
// (<app>.<tenant>.<apps-domain>) is listed with Default set and no ID.
type Route struct {
	ID         string    `json:"id,omitempty"`
	Tenant     string    `json:"tenant"`
	App        string    `json:"app"`
	Host       string    `json:"host,omitempty"`
	Path       string    `json:"path,omitempty"`
	TCP        bool      `json:"tcp,omitempty"`
	Port       int       `json:"port,omitempty"`
	TargetPort int       `json:"target_port,omitempty"`
	Default    bool      `json:"default,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
}

// CertRequest is the body of POST /v1/certs: PEM certificate (chain,
// leaf first) and PEM private key for a domain.
type CertRequest struct {
	Domain string `json:"domain"`
	Cert   string `json:"cert"`
	Key    string `json:"key"`
}

// Cert describes a stored certificate (never its key).
type Cert struct {
	Tenant    string    `json:"tenant"`
	Domain    string    `json:"domain"`
	Names     []string  `json:"names"`
	NotAfter  time.Time `json:"not_after"`
	CreatedAt time.Time `json:"created_at"`
}

// MaxCertBytes bounds a certificate chain or key.
const MaxCertBytes = 64 << 10

// ParseCert validates a certificate request at time now: the domain, the
// PEM blocks, that the key matches the leaf, that the leaf's names cover
// the domain, and that it is valid now. It returns the leaf's DNS names
// and expiry.
func (r *CertRequest) ParseCert(now time.Time) ([]string, time.Time, error) {
	r.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r.Domain)), ".")
	if err := ValidDomain(r.Domain, true); err != nil {
		err.(*Error).Field = "domain"
		return nil, time.Time{}, err
	}
	if len(r.Cert) > MaxCertBytes || len(r.Key) > MaxCertBytes {
		return nil, time.Time{}, FieldError("cert", "certificate or key is larger than %d bytes", MaxCertBytes)
	}
	// X509KeyPair also checks that the key matches the leaf.
	pair, err := tls.X509KeyPair([]byte(r.Cert), []byte(r.Key))
	if err != nil {
		field := "cert"
		if strings.Contains(err.Error(), "private key") {
			field = "key"
		}
		return nil, time.Time{}, FieldError(field, "certificate and key: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, time.Time{}, FieldError("cert", "certificate: %v", err)
	}
	if now.After(leaf.NotAfter) {
		return nil, time.Time{}, FieldError("cert", "the certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, time.Time{}, FieldError("cert", "the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if !covers(leaf.DNSNames, r.Domain) {
		return nil, time.Time{}, FieldError("cert", "the certificate's names %v do not cover %s", leaf.DNSNames, r.Domain)
	}
	return leaf.DNSNames, leaf.NotAfter.UTC(), nil
}

// covers reports whether a certificate with names serves domain: an
// exact name, or (for a plain domain) a wildcard one label up. A wildcard
// domain needs the same wildcard name.
func covers(names []string, domain string) bool {
	for _, n := range names {
		n = strings.ToLower(n)
		if n == domain {
			return true
		}
		if strings.HasPrefix(n, "*.") && !strings.HasPrefix(domain, "*.") {
			if _, parent, ok := strings.Cut(domain, "."); ok && parent == n[2:] {
				return true
			}
		}
	}
	return false
}

// TrafficSecond is one app's traffic through the routers in one second
// (GET /v1/apps/{name}/stats).
type TrafficSecond struct {
	App      string   `json:"app"` // "tenant/app"
	Unix     int64    `json:"unix"`
	Requests uint64   `json:"requests"`
	Status   []uint64 `json:"status"` // responses by class: 1xx, 2xx, 3xx, 4xx, 5xx
	BytesOut uint64   `json:"bytes_out"`
	// Latency counts requests per bucket; BoundsMs are the buckets' upper
	// bounds (a last, unbounded bucket follows).
	Latency  []uint64  `json:"latency"`
	BoundsMs []float64 `json:"bounds_ms"`
	// Held counts requests that began waiting for an instance of an app
	// scaled to zero.
	Held uint64 `json:"held,omitempty"`
}

// MetricSeries is one instance's or host's metrics over a range (GET
// /v1/apps/{name}/metrics, GET /v1/hosts/{id}/metrics).
type MetricSeries struct {
	ID      string                   `json:"id"`
	Host    string                   `json:"host,omitempty"`
	Metrics map[string][]MetricPoint `json:"metrics"`
}

// MetricPoint is a value at a Unix time (seconds).
type MetricPoint struct {
	T int64   `json:"t"`
	V float64 `json:"v"`
}
