package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Routes and certificates: routes belong to an app,
// not to a version; a domain belongs to the tenant that first routes it or
// uploads a certificate for it, and no other tenant may use it.
const (
	TableRoutes = "routes"
	TableCerts  = "certs"
)

// TCP route ports routers listen on.
const (
	TCPPortMin = 30000
	TCPPortMax = 32767
)

// Route sends traffic for a domain and path prefix (HTTP) or a router port
// (TCP) to an app's ready instances.
type Route struct {
	ID     string
	Tenant string
	App    string
	// HTTP: Host is a lower-case domain, Path a prefix ("/" for all).
	Host string
	Path string
	// TCP: Port is the router port; TargetPort the instance's container
	// port (0: the app's first port).
	TCP        bool
	Port       int
	TargetPort int
	CreatedAt  time.Time
	Meta
}

// Cert is a tenant's certificate for one domain ("*.example.com" covers
// one label under example.com), served by SNI.
type Cert struct {
	Tenant    string
	Domain    string
	CertPEM   []byte
	KeyPEM    []byte
	Names     []string // DNS names the certificate covers
	NotAfter  time.Time
	CreatedAt time.Time
	Meta
}

func routeSchemas() (*memdb.TableSchema, *memdb.TableSchema) {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	routes := &memdb.TableSchema{Name: TableRoutes, Indexes: map[string]*memdb.IndexSchema{
		"id":     {Name: "id", Unique: true, Indexer: str("ID")},
		"app":    {Name: "app", Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{str("Tenant"), str("App")}}},
		"tenant": {Name: "tenant", Indexer: str("Tenant")},
		"domain": {Name: "domain", AllowMissing: true, Indexer: str("Host")},
		"port":   {Name: "port", Indexer: &memdb.IntFieldIndex{Field: "Port"}},
	}}
	certs := &memdb.TableSchema{Name: TableCerts, Indexes: map[string]*memdb.IndexSchema{
		"id":     {Name: "id", Unique: true, Indexer: str("Domain")},
		"tenant": {Name: "tenant", Indexer: str("Tenant")},
	}}
	return routes, certs
}

// Routes returns every route, sorted by id.
func (s *Snapshot) Routes(ws memdb.WatchSet) ([]*Route, error) {
	return list[Route](s, ws, TableRoutes, "id")
}

// AppRoutes returns an app's routes.
func (s *Snapshot) AppRoutes(ws memdb.WatchSet, tenant, app string) ([]*Route, error) {
	return list[Route](s, ws, TableRoutes, "app", tenant, app)
}

// TenantRoutes returns a tenant's routes.
func (s *Snapshot) TenantRoutes(ws memdb.WatchSet, tenant string) ([]*Route, error) {
	return list[Route](s, ws, TableRoutes, "tenant", tenant)
}

// Certs returns every certificate, by domain.
func (s *Snapshot) Certs(ws memdb.WatchSet) ([]*Cert, error) {
	return list[Cert](s, ws, TableCerts, "id")
}

// TenantCerts returns a tenant's certificates.
func (s *Snapshot) TenantCerts(ws memdb.WatchSet, tenant string) ([]*Cert, error) {
	return list[Cert](s, ws, TableCerts, "tenant", tenant)
}

// RouteAddRequest adds a route to an existing app. Refused when the
// domain (or a wildcard certificate covering it) belongs to another
// tenant, when the same domain and path are routed already, or when the
// TCP port is taken; a TCP route without a port gets the lowest free one.
type RouteAddRequest struct {
	Route Route
	Time  time.Time
}

// RouteDeleteRequest removes one of a tenant's routes; not found if absent.
type RouteDeleteRequest struct {
	Tenant string
	App    string // "" matches any app of the tenant
	ID     string
}

// CertPutRequest stores (or replaces) a tenant's certificate for a domain.
// The API node validates the PEM (key matches, names cover the domain, not
// expired); the FSM checks ownership.
type CertPutRequest struct {
	Cert Cert
	Time time.Time
}

// CertDeleteRequest removes a tenant's certificate; not found if absent.
type CertDeleteRequest struct {
	Tenant string
	Domain string
}

// domainOwner returns the tenant owning domain d, "" when none: the
// tenant with a route on d, a certificate for d, or a wildcard
// certificate covering d.
func (w *writer) domainOwner(d string) (string, *Error) {
	snap := w.snap()
	rs, err := list[Route](snap, nil, TableRoutes, "domain", d)
	if err != nil {
		return "", Errorf(KindInternal, "%v", err)
	}
	if len(rs) > 0 {
		return rs[0].Tenant, nil
	}
	candidates := []string{d}
	if _, parent, ok := strings.Cut(d, "."); ok && !strings.HasPrefix(d, "*.") {
		candidates = append(candidates, "*."+parent)
	}
	for _, c := range candidates {
		cert, err := first[Cert](snap, nil, TableCerts, "id", c)
		if err != nil {
			return "", Errorf(KindInternal, "%v", err)
		}
		if cert != nil {
			return cert.Tenant, nil
		}
	}
	return "", nil
}

// wildcardConflict reports another tenant's route under a wildcard
// domain's parent, which a wildcard certificate may not take over.
func (w *writer) wildcardConflict(tenant, wildcard string) (string, *Error) {
	parent := strings.TrimPrefix(wildcard, "*.")
	rs, err := w.snap().Routes(nil)
	if err != nil {
		return "", Errorf(KindInternal, "%v", err)
	}
	for _, r := range rs {
		if r.Tenant == tenant || r.TCP {
			continue
		}
		if _, p, ok := strings.Cut(r.Host, "."); ok && p == parent {
			return r.Host, nil
		}
	}
	return "", nil
}

func (w *writer) routeAdd(r *RouteAddRequest) *Error {
	rt := r.Route
	if rt.ID == "" || rt.Tenant == "" || rt.App == "" {
		return Errorf(KindInvalid, "route lacks id, tenant or app")
	}
	a, e := w.app(rt.Tenant, rt.App)
	if e != nil {
		return e
	}
	if a == nil {
		return Errorf(KindNotFound, "app %s not found", rt.App)
	}
	if old, err := first[Route](w.snap(), nil, TableRoutes, "id", rt.ID); err != nil {
		return Errorf(KindInternal, "%v", err)
	} else if old != nil {
		return Errorf(KindConflict, "route id %s is taken", rt.ID)
	}
	if rt.TCP {
		rt.Host, rt.Path = "", ""
		if e := w.tcpPort(&rt); e != nil {
			return e
		}
	} else {
		rt.Port, rt.TargetPort = 0, 0
		if rt.Host == "" || strings.HasPrefix(rt.Host, "*") {
			return &Error{Kind: KindInvalid, Field: "host", Msg: "an HTTP route needs a plain domain"}
		}
		owner, e := w.domainOwner(rt.Host)
		if e != nil {
			return e
		}
		if owner != "" && owner != rt.Tenant {
			return &Error{Kind: KindConflict, Field: "host", Msg: fmt.Sprintf("domain %s belongs to another tenant", rt.Host)}
		}
		rs, err := list[Route](w.snap(), nil, TableRoutes, "domain", rt.Host)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		for _, o := range rs {
			if o.Path == rt.Path {
				return &Error{Kind: KindConflict, Field: "path", Msg: fmt.Sprintf("%s%s is routed to app %s already", rt.Host, rt.Path, o.App)}
			}
		}
	}
	rt.CreatedAt = r.Time
	w.meta(&rt.Meta, nil)
	return w.insert(TableRoutes, &rt)
}

// tcpPort checks a TCP route's port, or picks the lowest free one.
func (w *writer) tcpPort(rt *Route) *Error {
	taken := func(p int) (bool, *Error) {
		rs, err := list[Route](w.snap(), nil, TableRoutes, "port", p)
		if err != nil {
			return false, Errorf(KindInternal, "%v", err)
		}
		return len(rs) > 0, nil
	}
	if rt.Port != 0 {
		if rt.Port < TCPPortMin || rt.Port > TCPPortMax {
			return &Error{Kind: KindInvalid, Field: "port", Msg: fmt.Sprintf("port %d is outside %d-%d", rt.Port, TCPPortMin, TCPPortMax)}
		}
		t, e := taken(rt.Port)
		if e != nil {
			return e
		}
		if t {
			return &Error{Kind: KindConflict, Field: "port", Msg: fmt.Sprintf("port %d is taken", rt.Port)}
		}
		return nil
	}
	for p := TCPPortMin; p <= TCPPortMax; p++ {
		t, e := taken(p)
		if e != nil {
			return e
		}
		if !t {
			rt.Port = p
			return nil
		}
	}
	return &Error{Kind: KindRefused, Field: "port", Msg: "every TCP route port is taken"}
}

func (w *writer) routeDelete(r *RouteDeleteRequest) *Error {
	rt, err := first[Route](w.snap(), nil, TableRoutes, "id", r.ID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if rt == nil || rt.Tenant != r.Tenant || (r.App != "" && rt.App != r.App) {
		return Errorf(KindNotFound, "route %s not found", r.ID)
	}
	return w.delete(TableRoutes, rt)
}

// dropAppRoutes deletes a deleted app's routes.
func (w *writer) dropAppRoutes(tenant, app string) *Error {
	rs, err := w.snap().AppRoutes(nil, tenant, app)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, rt := range rs {
		if e := w.delete(TableRoutes, rt); e != nil {
			return e
		}
	}
	return nil
}

func (w *writer) certPut(r *CertPutRequest) *Error {
	c := r.Cert
	if c.Tenant == "" || c.Domain == "" || len(c.CertPEM) == 0 || len(c.KeyPEM) == 0 {
		return Errorf(KindInvalid, "certificate lacks tenant, domain, certificate or key")
	}
	if t, err := w.snap().Tenant(nil, c.Tenant); err != nil {
		return Errorf(KindInternal, "%v", err)
	} else if t == nil {
		return Errorf(KindNotFound, "tenant %s not found", c.Tenant)
	}
	owner, e := w.domainOwner(c.Domain)
	if e != nil {
		return e
	}
	if owner != "" && owner != c.Tenant {
		return &Error{Kind: KindConflict, Field: "domain", Msg: fmt.Sprintf("domain %s belongs to another tenant", c.Domain)}
	}
	if strings.HasPrefix(c.Domain, "*.") {
		host, e := w.wildcardConflict(c.Tenant, c.Domain)
		if e != nil {
			return e
		}
		if host != "" {
			return &Error{Kind: KindConflict, Field: "domain", Msg: fmt.Sprintf("%s would cover %s, which belongs to another tenant", c.Domain, host)}
		}
	}
	old, err := first[Cert](w.snap(), nil, TableCerts, "id", c.Domain)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	c.CreatedAt = r.Time
	w.meta(&c.Meta, metaOfCert(old))
	return w.insert(TableCerts, &c)
}

func metaOfCert(c *Cert) *Meta {
	if c == nil {
		return nil
	}
	return &c.Meta
}

func (w *writer) certDelete(r *CertDeleteRequest) *Error {
	c, err := first[Cert](w.snap(), nil, TableCerts, "id", r.Domain)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if c == nil || c.Tenant != r.Tenant {
		return Errorf(KindNotFound, "certificate for %s not found", r.Domain)
	}
	return w.delete(TableCerts, c)
}
