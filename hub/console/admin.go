package console

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// adminPages are the templates/<name>.html files of the admin and tenant
// forms, each rendered inside layout.html.
var adminPages = []string{"host", "tokens", "tenants", "providers", "diff"}

// registerAdmin adds the admin and tenant forms' pages and actions: hosts
// (a page of the list, one host, drain, undrain, remove), pools (create, update),
// tokens and join tokens, tenants, provider accounts and machines, and
// the app page's routes, certificates, canary and version diff. Every
// action goes through the API with the session's token, so the API
// decides who may do what; the pages only leave out forms the session's
// role could never use.
func (c *Console) registerAdmin(mux *http.ServeMux) {
	for _, name := range adminPages {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html", "templates/"+name+".html")
		if err != nil {
			panic(fmt.Sprintf("console template %s: %v", name, err)) // embedded: a build mistake, caught by every test
		}
		c.pages[name] = t
	}
	mux.HandleFunc("GET /ui/hosts/{id}", c.get(c.host))
	mux.HandleFunc("POST /ui/hosts/{id}/drain", c.post(c.drainHost))
	mux.HandleFunc("POST /ui/hosts/{id}/undrain", c.post(c.undrainHost))
	mux.HandleFunc("POST /ui/hosts/{id}/remove", c.post(c.removeHost))
	mux.HandleFunc("POST /ui/pools", c.post(c.savePool))
	mux.HandleFunc("POST /ui/pools/{name}", c.post(c.savePool))

	mux.HandleFunc("GET /ui/tokens", c.get(c.tokens))
	mux.HandleFunc("POST /ui/tokens", c.post(c.createToken))
	mux.HandleFunc("POST /ui/tokens/{id}/revoke", c.post(c.revokeToken))
	mux.HandleFunc("POST /ui/join-tokens", c.post(c.createJoinToken))
	mux.HandleFunc("POST /ui/join-tokens/{id}/revoke", c.post(c.revokeJoinToken))
	mux.HandleFunc("GET /ui/tenants", c.get(c.tenants))
	mux.HandleFunc("POST /ui/tenants", c.post(c.createTenant))

	mux.HandleFunc("GET /ui/providers", c.get(c.providers))
	mux.HandleFunc("POST /ui/providers", c.post(c.addProvider))
	mux.HandleFunc("POST /ui/providers/{name}/remove", c.post(c.removeProvider))

	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/routes", c.post(c.addRoute))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/routes/{id}/remove", c.post(c.removeRoute))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/certs", c.post(c.addCert))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/certs/{domain}/remove", c.post(c.removeCert))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/promote", c.post(c.promote))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/abort", c.post(c.abort))
	mux.HandleFunc("GET /ui/apps/{tenant}/{app}/diff", c.get(c.diff))
	c.registerObserve(mux)
}

// renderPart writes one template of a page alone (a live table).
func (c *Console) renderPart(w http.ResponseWriter, page, name string, data any) {
	var b bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&b, name, data); err != nil {
		c.log.Error("console: rendering a fragment", "fragment", name, "err", err)
		http.Error(w, "the table could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// Hosts.

// hostGroup counts a pool's hosts by state.
type hostGroup struct {
	Pool, Datacenter string
	Total            int
	States           map[string]int
}

// hostsData is one page of the host list, filtered, and a summary of
// every host by pool.
type hostsData struct {
	Groups         []hostGroup
	Rows           []apitypes.Host
	Pager          pager
	Q, Pool, State string
	Pools, States  []string
	Total, Matched int
	TablePath      string
	Refresh        int64
}

// hostStates are the states a host may be in, in the filter's order.
var hostStates = []string{"ready", "suspect", "down", "draining", "drained"}

func (c *Console) loadHosts(r *http.Request, s *session) (hostsData, error) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	hs, _, err := c.client(s).Hosts().List(ctx, nil)
	q := r.URL.Query()
	d := hostsData{Q: strings.TrimSpace(q.Get("q")), Pool: q.Get("pool"), State: q.Get("state"), States: hostStates,
		Refresh: c.cfg.Refresh.Milliseconds(), Total: len(hs)}
	if err != nil {
		return d, err
	}
	slices.SortFunc(hs, func(a, b apitypes.Host) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	groups := map[string]*hostGroup{}
	var match []apitypes.Host
	for _, h := range hs {
		g := groups[h.Pool]
		if g == nil {
			g = &hostGroup{Pool: h.Pool, Datacenter: h.Datacenter, States: map[string]int{}}
			groups[h.Pool] = g
		}
		g.Total++
		g.States[h.State]++
		if (d.Pool == "" || h.Pool == d.Pool) && (d.State == "" || h.State == d.State) &&
			(d.Q == "" || strings.Contains(h.Name, d.Q) || strings.HasPrefix(h.ID, d.Q)) {
			match = append(match, h)
		}
	}
	for _, g := range groups {
		d.Groups = append(d.Groups, *g)
		d.Pools = append(d.Pools, g.Pool)
	}
	slices.SortFunc(d.Groups, func(a, b hostGroup) int { return strings.Compare(a.Pool, b.Pool) })
	slices.Sort(d.Pools)
	filter := url.Values{}
	for k, v := range map[string]string{"q": d.Q, "pool": d.Pool, "state": d.State} {
		if v != "" {
			filter.Set(k, v)
		}
	}
	d.Matched = len(match)
	d.Rows, d.Pager = paginate(match, "/ui/hosts", withPage(filter, q.Get("page")))
	d.TablePath = "/ui/hosts/table?" + withPage(filter, q.Get("page")).Encode()
	return d, nil
}

// withPage is a filter with the page number added (when there is one).
func withPage(filter url.Values, page string) url.Values {
	v := url.Values{}
	for k, vs := range filter {
		v[k] = vs
	}
	if page != "" {
		v.Set("page", page)
	}
	return v
}

func (c *Console) hosts(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadHosts(r, s)
	if err != nil {
		c.list(w, s, "hosts", "Hosts", nil, err)
		return
	}
	c.list(w, s, "hosts", "Hosts", d, nil)
}

func (c *Console) hostsFragment(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadHosts(r, s)
	if err != nil {
		http.Error(w, errText(err), statusOf(err))
		return
	}
	c.renderPart(w, "hosts", "hostlist", d)
}

func (c *Console) host(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderHost(w, r, s, http.StatusOK, "")
}

func (c *Console) renderHost(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	h, _, err := c.client(s).Hosts().Get(ctx, r.PathValue("id"), nil)
	title := "Host"
	if err != nil {
		h = nil
	}
	if h != nil {
		title = "Host " + h.Name
	}
	v := c.view(s, "hosts", title, h)
	v.Error = msg
	if err != nil && msg == "" {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "host", v)
}

func (c *Console) drainHost(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	id := r.PathValue("id")
	if _, err := c.client(s).Hosts().Drain(ctx, id); err != nil {
		c.renderHost(w, r, s, statusOf(err), "Not drained: "+errText(err))
		return
	}
	c.log.Info("console: host drained", "host", id, "session_user", s.Name)
	redirect(w, r, "/ui/hosts/"+url.PathEscape(id))
}

func (c *Console) undrainHost(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	id := r.PathValue("id")
	if _, err := c.client(s).Hosts().Undrain(ctx, id); err != nil {
		c.renderHost(w, r, s, statusOf(err), "Not undrained: "+errText(err))
		return
	}
	c.log.Info("console: host undrained", "host", id, "session_user", s.Name)
	redirect(w, r, "/ui/hosts/"+url.PathEscape(id))
}

func (c *Console) removeHost(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := c.client(s).Hosts().Remove(ctx, id); err != nil {
		c.renderHost(w, r, s, statusOf(err), "Not removed: "+errText(err))
		return
	}
	c.log.Info("console: host removed", "host", id, "session_user", s.Name)
	redirect(w, r, "/ui/hosts")
}

// Pools.

// poolRow is a pool with its usage as shares of its capacity, for the
// bars.
type poolRow struct {
	apitypes.Pool
	CPUPercent, MemoryPercent int
}

type poolsData struct {
	Pools     []poolRow
	Providers []string
	Kinds     []string // what a pool's provider may be
	Form      form
	Editing   string // the pool the form updates; "" creates one
}

// poolFields are the pool form's fields.
var poolFields = []string{"name", "datacenter", "region", "provider", "account", "template", "min_hosts", "max_hosts", "scale_down_after", "boot_timeout"}

func (c *Console) pools(w http.ResponseWriter, r *http.Request, s *session) {
	f := blank(map[string]string{"datacenter": "dc1"})
	edit := r.URL.Query().Get("edit")
	if edit != "" && s.Admin() {
		ctx, cancel := apiCtx(r)
		p, _, err := c.client(s).Pools().Get(ctx, edit, nil)
		cancel()
		if err != nil {
			c.renderPools(w, r, s, statusOf(err), f, "", errText(err))
			return
		}
		f = blank(poolValues(p))
	}
	c.renderPools(w, r, s, http.StatusOK, f, edit, "")
}

// poolValues is a pool as the form shows it.
func poolValues(p *apitypes.Pool) map[string]string {
	v := map[string]string{"name": p.Name, "datacenter": p.Datacenter, "region": p.Region, "provider": p.Provider}
	if pr := p.Provision; pr != nil {
		v["account"], v["template"] = pr.Provider, string(pr.Template)
		v["min_hosts"], v["max_hosts"] = fmt.Sprint(pr.MinHosts), fmt.Sprint(pr.MaxHosts)
		v["scale_down_after"], v["boot_timeout"] = pr.ScaleDownAfter.D().String(), pr.BootTimeout.D().String()
	}
	return v
}

func (c *Console) renderPools(w http.ResponseWriter, r *http.Request, s *session, code int, f form, editing, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	ps, _, err := cl.Pools().List(ctx, nil)
	d := poolsData{Form: f, Editing: editing, Kinds: apitypes.Providers[1:]}
	for _, p := range ps {
		// The list leaves out capacity and usage; each pool's read has them.
		if full, _, err := cl.Pools().Get(ctx, p.Name, nil); err == nil {
			p = *full
		}
		row := poolRow{Pool: p}
		if p.Capacity != nil && p.Usage != nil {
			row.CPUPercent, row.MemoryPercent = percent(p.Usage.CPU, p.Capacity.CPU), percent(p.Usage.Memory, p.Capacity.Memory)
		}
		d.Pools = append(d.Pools, row)
	}
	slices.SortFunc(d.Pools, func(a, b poolRow) int { return strings.Compare(a.Name, b.Name) })
	if s.Admin() {
		if accts, _, err := cl.Providers().List(ctx, nil); err == nil {
			for _, a := range accts {
				d.Providers = append(d.Providers, a.Name)
			}
		}
	}
	v := c.view(s, "pools", "Pools", d)
	v.Error = msg
	if err != nil && msg == "" {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "pools", v)
}

// percent is used as a share of capacity, 0 to 100.
func percent(used, capacity int) int {
	if capacity <= 0 {
		return 0
	}
	return min(100, used*100/capacity)
}

// savePool creates a pool (POST /ui/pools) or replaces one (POST
// /ui/pools/{name}: the API's PUT takes the whole pool).
func (c *Console) savePool(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, poolFields...)
	editing := r.PathValue("name")
	if editing != "" {
		f.V["name"] = editing
	}
	req := apitypes.PoolRequest{Name: f.V["name"], Datacenter: f.V["datacenter"], Region: f.V["region"], Provider: f.V["provider"]}
	if f.V["account"] != "" {
		pr := &apitypes.Provision{Provider: f.V["account"], Template: f.jsonObject("template"),
			MinHosts: f.number("min_hosts", 0), MaxHosts: f.number("max_hosts", 1)}
		if pr.Template == nil && !f.failed() {
			f.Errors["template"] = "a provisioned pool needs a machine template"
		}
		pr.ScaleDownAfter = f.duration("scale_down_after")
		pr.BootTimeout = f.duration("boot_timeout")
		req.Provision = pr
	}
	if f.failed() {
		c.renderPools(w, r, s, http.StatusUnprocessableEntity, f, editing, "The pool was not saved: see the fields below.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	var err error
	if editing != "" {
		// The API replaces the whole pool: keep what the form does not show.
		var old *apitypes.Pool
		if old, _, err = c.client(s).Pools().Get(ctx, editing, nil); err == nil {
			req.Labels, req.Drivers = old.Labels, old.Drivers
			_, err = c.client(s).Pools().Update(ctx, req)
		}
	} else {
		_, err = c.client(s).Pools().Create(ctx, req)
	}
	if err != nil {
		f.apiError(err, map[string]string{"provision.provider": "account", "provision.template": "template",
			"provision.min_hosts": "min_hosts", "provision.max_hosts": "max_hosts", "provision": "general"})
		c.renderPools(w, r, s, statusOf(err), f, editing, "The pool was not saved: "+errText(err))
		return
	}
	c.log.Info("console: pool saved", "pool", req.Name, "update", editing != "", "session_user", s.Name)
	redirect(w, r, "/ui/pools")
}

// duration reads a Go duration field ("" is zero).
func (f form) duration(field string) apitypes.Duration {
	s := f.V[field]
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		f.Errors[field] = field + " is a duration such as 10m or 1h30m"
		return 0
	}
	return apitypes.Duration(d)
}

// Tokens and join tokens.

type tokensData struct {
	Tokens     []apitypes.Token
	JoinTokens []apitypes.JoinToken
	Tenants    []string
	Pools      []string
	Roles      []apitypes.Role
	Form       form
	JoinForm   form
	// New and NewJoin are a token just created: its secret is shown this
	// once and never again.
	New     *apitypes.Token
	NewJoin *apitypes.JoinToken
}

func (c *Console) tokens(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderTokens(w, r, s, http.StatusOK, tokensData{Form: blank(map[string]string{"role": "developer"}), JoinForm: blank(map[string]string{"ttl": "1h", "uses": "1"})}, "")
}

func (c *Console) renderTokens(w http.ResponseWriter, r *http.Request, s *session, code int, d tokensData, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	var err error
	d.Tokens, _, err = cl.Tokens().List(ctx, nil)
	slices.SortFunc(d.Tokens, func(a, b apitypes.Token) int {
		return strings.Compare(a.Tenant+"/"+a.Name+a.ID, b.Tenant+"/"+b.Name+b.ID)
	})
	d.Roles = apitypes.Roles
	if s.Admin() {
		if ts, _, err := cl.Tenants().List(ctx, nil); err == nil {
			for _, t := range ts {
				d.Tenants = append(d.Tenants, t.Name)
			}
		}
		if ps, _, err := cl.Pools().List(ctx, nil); err == nil {
			for _, p := range ps {
				d.Pools = append(d.Pools, p.Name)
			}
			slices.Sort(d.Pools)
		}
		d.JoinTokens, _, _ = cl.JoinTokens().List(ctx, nil)
	} else {
		d.Roles = slices.DeleteFunc(slices.Clone(apitypes.Roles), func(r apitypes.Role) bool { return r == apitypes.RoleAdmin })
	}
	v := c.view(s, "tokens", "Tokens", d)
	v.Error = msg
	if err != nil && msg == "" {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "tokens", v)
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, "name", "role", "tenant")
	if !s.Admin() {
		f.V["tenant"] = s.Tenant
	}
	d := tokensData{Form: f, JoinForm: blank(map[string]string{"ttl": "1h", "uses": "1"})}
	ctx, cancel := apiCtx(r)
	defer cancel()
	tok, err := c.client(s).Tokens().Create(ctx, apitypes.TokenRequest{Name: f.V["name"], Role: apitypes.Role(f.V["role"]), Tenant: f.V["tenant"]})
	if err != nil {
		f.apiError(err, nil)
		c.renderTokens(w, r, s, statusOf(err), d, "The token was not created: "+errText(err))
		return
	}
	c.log.Info("console: token created", "token_id", tok.ID, "role", tok.Role, "tenant", tok.Tenant, "session_user", s.Name)
	// The answer is the page itself, not a redirect: the secret is in
	// this answer only (no-store) and nowhere else.
	d.New, d.Form = tok, blank(map[string]string{"role": f.V["role"], "tenant": f.V["tenant"]})
	c.renderTokens(w, r, s, http.StatusCreated, d, "")
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := c.client(s).Tokens().Revoke(ctx, id); err != nil {
		c.renderTokens(w, r, s, statusOf(err), tokensData{Form: blank(nil), JoinForm: blank(nil)}, "Not revoked: "+errText(err))
		return
	}
	c.log.Info("console: token revoked", "token_id", id, "session_user", s.Name)
	redirect(w, r, "/ui/tokens")
}

func (c *Console) createJoinToken(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, "pool", "ttl", "uses")
	d := tokensData{Form: blank(map[string]string{"role": "developer"}), JoinForm: f}
	req := apitypes.JoinTokenRequest{Pool: f.V["pool"], TTL: f.duration("ttl"), Uses: f.number("uses", 0)}
	if f.failed() {
		c.renderTokens(w, r, s, http.StatusUnprocessableEntity, d, "The join token was not created: see the fields below.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	jt, err := c.client(s).JoinTokens().Create(ctx, req)
	if err != nil {
		f.apiError(err, nil)
		c.renderTokens(w, r, s, statusOf(err), d, "The join token was not created: "+errText(err))
		return
	}
	c.log.Info("console: join token created", "join_token", jt.ID, "pool", jt.Pool, "session_user", s.Name)
	d.NewJoin, d.JoinForm = jt, blank(map[string]string{"pool": f.V["pool"], "ttl": f.V["ttl"], "uses": f.V["uses"]})
	c.renderTokens(w, r, s, http.StatusCreated, d, "")
}

func (c *Console) revokeJoinToken(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := c.client(s).JoinTokens().Revoke(ctx, id); err != nil {
		c.renderTokens(w, r, s, statusOf(err), tokensData{Form: blank(nil), JoinForm: blank(nil)}, "Not revoked: "+errText(err))
		return
	}
	c.log.Info("console: join token revoked", "join_token", id, "session_user", s.Name)
	redirect(w, r, "/ui/tokens")
}

// Tenants.

type tenantsData struct {
	Tenants []apitypes.Tenant
	Form    form
}

var tenantFields = []string{"name", "pools", "quota_instances", "quota_cpu", "quota_memory"}

func (c *Console) tenants(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderTenants(w, r, s, http.StatusOK, blank(nil), "")
}

func (c *Console) renderTenants(w http.ResponseWriter, r *http.Request, s *session, code int, f form, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	ts, _, err := c.client(s).Tenants().List(ctx, nil)
	slices.SortFunc(ts, func(a, b apitypes.Tenant) int { return strings.Compare(a.Name, b.Name) })
	v := c.view(s, "tenants", "Tenants", tenantsData{Tenants: ts, Form: f})
	v.Error = msg
	if err != nil && msg == "" {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "tenants", v)
}

func (c *Console) createTenant(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, tenantFields...)
	req := apitypes.TenantRequest{Name: f.V["name"], Pools: f.list("pools"), Quota: apitypes.Quota{
		Instances: f.number("quota_instances", 0), CPU: f.number("quota_cpu", 0), Memory: f.number("quota_memory", 0)}}
	if f.failed() {
		c.renderTenants(w, r, s, http.StatusUnprocessableEntity, f, "The tenant was not created: see the fields below.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	if _, err := c.client(s).Tenants().Create(ctx, req); err != nil {
		f.apiError(err, map[string]string{"quota": "quota_instances"})
		c.renderTenants(w, r, s, statusOf(err), f, "The tenant was not created: "+errText(err))
		return
	}
	c.log.Info("console: tenant created", "tenant", req.Name, "session_user", s.Name)
	redirect(w, r, "/ui/tenants")
}

// tenantOpts acts on an app's tenant.
func tenantOpts(r *http.Request) *client.WriteOptions {
	return &client.WriteOptions{Tenant: r.PathValue("tenant")}
}
