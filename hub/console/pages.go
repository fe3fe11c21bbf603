package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// apiTimeout bounds the API calls of one page.
const apiTimeout = 15 * time.Second

// view is what every page template gets.
type view struct {
	S       *session
	Title   string
	Nav     string
	Refresh int64 // live tables' reload period, ms
	Error   string
	Data    any
}

func (c *Console) view(s *session, nav, title string, data any) *view {
	return &view{S: s, Nav: nav, Title: title, Refresh: c.cfg.Refresh.Milliseconds(), Data: data}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.session(r) != nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	csrf := randomID()
	setCookie(w, r, loginCookie, csrf, 3600)
	v := c.view(nil, "login", "Sign in", map[string]string{"CSRF": csrf})
	v.Error = msg
	c.render(w, code, "login", v)
}

// login checks the token against the API and opens a session for it.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !equal(r.PostForm.Get("csrf"), ck.Value) {
		http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		c.renderLogin(w, r, http.StatusUnauthorized, "Enter an API token.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	self, err := c.client(&session{token: token}).Tokens().Self(ctx)
	if err != nil {
		c.log.Info("console: sign-in refused", "status", apitypes.StatusOf(err))
		c.renderLogin(w, r, http.StatusUnauthorized, "Sign-in failed: that token is not valid.")
		return
	}
	s := c.sessions.create(token, *self)
	c.log.Info("console: signed in", "token_id", self.ID, "role", self.Role, "tenant", self.Tenant)
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, SessionCookie, s.ID, 0)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.remove(s.ID)
	setCookie(w, r, SessionCookie, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func apiCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), apiTimeout)
}

// errText is what a page shows of a failed API call.
func errText(err error) string {
	if err == nil {
		return ""
	}
	var ae *apitypes.Error
	if errors.As(err, &ae) {
		return ae.Error()
	}
	return "the hub could not answer: " + err.Error()
}

// statusOf is the HTTP status a page answers for a failed API call.
func statusOf(err error) int {
	if code := apitypes.StatusOf(err); code >= 400 {
		return code
	}
	return http.StatusBadGateway
}

type overviewData struct {
	Status              *apitypes.Status
	Apps, Hosts, Pools  int
	Ready, Instances    int
	StatusErr, HostsErr string
	// Month is the signed-in tenant's invoice of this month so far (nil
	// for an admin, or when the API gives none); MonthErr why not.
	Month    *apitypes.Invoice
	MonthErr string
	// Events are the newest events the token may read, newest first.
	Events []apitypes.Event
}

// overviewEvents is how many of the newest events the overview shows.
const overviewEvents = 10

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	d := overviewData{}
	st, err := cl.Status(ctx)
	d.Status, d.StatusErr = st, errText(err)
	if apps, _, err := cl.Apps().List(ctx, nil); err == nil {
		d.Apps = len(apps)
	}
	if hosts, _, err := cl.Hosts().List(ctx, nil); err == nil {
		d.Hosts = len(hosts)
	} else {
		d.HostsErr = errText(err)
	}
	if pools, _, err := cl.Pools().List(ctx, nil); err == nil {
		d.Pools = len(pools)
	}
	if s.Tenant != "" {
		inv, err := cl.Invoice(ctx, "", &client.QueryOptions{Tenant: s.Tenant})
		if err != nil {
			d.MonthErr = errText(err)
		} else {
			d.Month = inv
		}
	}
	if evs, _, err := cl.Events(ctx, 0, &client.QueryOptions{Tenant: s.Tenant}); err == nil {
		if len(evs) > overviewEvents {
			evs = evs[len(evs)-overviewEvents:]
		}
		slices.Reverse(evs)
		d.Events = evs
	}
	c.render(w, http.StatusOK, "overview", c.view(s, "overview", "Overview", d))
}

// deployForm is the deploy form's fields as typed, and what is wrong
// with them.
type deployForm struct {
	Tenant, Name, Image, Command, Instances, Ports, Env string
	// CPU (millicores), Memory (MB), Pools (comma-separated), Strategy
	// (as the API names it) with its MaxSurge and MaxUnavailable, and
	// Health (an HTTP readiness check's path).
	CPU, Memory, Pools, Strategy, MaxSurge, MaxUnavailable, Health string
	Errors                                                         map[string]string
}

// strategies are the update strategies the deploy form offers ("" is the
// API's default, rolling).
var strategies = []string{"rolling", "canary", "blue-green"}

type appsData struct {
	Apps       []apitypes.App
	Tenants    []string
	Form       deployForm
	List       appList
	Strategies []string
}

func (c *Console) apps(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderApps(w, r, s, http.StatusOK, deployForm{Instances: "1"}, "")
}

func (c *Console) renderApps(w http.ResponseWriter, r *http.Request, s *session, code int, form deployForm, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	apps, _, err := cl.Apps().List(ctx, nil)
	d := appsData{Apps: apps, Form: form, Strategies: strategies}
	slices.SortFunc(d.Apps, func(a, b apitypes.App) int {
		return strings.Compare(a.Tenant+"/"+a.Name, b.Tenant+"/"+b.Name)
	})
	d.Apps, d.List = pageOfApps(d.Apps, r.URL.Query())
	if s.Admin() {
		if ts, _, err := cl.Tenants().List(ctx, nil); err == nil {
			for _, t := range ts {
				d.Tenants = append(d.Tenants, t.Name)
			}
		}
	}
	v := c.view(s, "apps", "Apps", d)
	v.Error = msg
	if err != nil && msg == "" {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "apps", v)
}

// deploy creates an app from the deploy form. What the API refuses is
// shown next to the form, with what was typed kept.
func (c *Console) deploy(w http.ResponseWriter, r *http.Request, s *session) {
	f := deployForm{
		Tenant: strings.TrimSpace(r.PostForm.Get("tenant")), Name: strings.TrimSpace(r.PostForm.Get("name")),
		Image: strings.TrimSpace(r.PostForm.Get("image")), Command: strings.TrimSpace(r.PostForm.Get("command")),
		Instances: strings.TrimSpace(r.PostForm.Get("instances")), Ports: strings.TrimSpace(r.PostForm.Get("ports")),
		Env: r.PostForm.Get("env"), Errors: map[string]string{},
	}
	for p, k := range map[*string]string{&f.CPU: "cpu", &f.Memory: "memory", &f.Pools: "pools", &f.Strategy: "strategy",
		&f.MaxSurge: "max_surge", &f.MaxUnavailable: "max_unavailable", &f.Health: "health"} {
		*p = strings.TrimSpace(r.PostForm.Get(k))
	}
	if !s.Admin() {
		f.Tenant = s.Tenant
	}
	spec, errs := f.spec()
	if s.Admin() && f.Tenant == "" {
		errs["tenant"] = "choose the tenant the app belongs to"
	}
	if len(errs) > 0 {
		f.Errors = errs
		c.renderApps(w, r, s, http.StatusUnprocessableEntity, f, "The app was not deployed: see the fields below.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	app, err := c.client(s).Apps().Create(ctx, spec, &client.WriteOptions{Tenant: f.Tenant})
	if err != nil {
		var ae *apitypes.Error
		if errors.As(err, &ae) && ae.Field != "" {
			f.Errors[formField(ae.Field)] = ae.Message
		}
		c.renderApps(w, r, s, statusOf(err), f, "The app was not deployed: "+errText(err))
		return
	}
	c.log.Info("console: app deployed", "tenant", app.Tenant, "app", app.Name, "session_user", s.Name)
	http.Redirect(w, r, appURL(app.Tenant, app.Name), http.StatusSeeOther)
}

// formField maps an API error's field ("ports[0].container_port") to the
// deploy form's field it came from ("ports").
func formField(f string) string {
	if i := strings.IndexAny(f, "[."); i > 0 {
		f = f[:i]
	}
	switch f {
	case "name", "image", "command", "instances", "ports", "env", "tenant", "cpu", "memory", "pools", "strategy", "health":
		return f
	}
	return "general"
}

// spec turns the form into an app spec, or says which fields cannot be
// read. The API checks the rest.
func (f deployForm) spec() (apitypes.AppSpec, map[string]string) {
	errs := map[string]string{}
	spec := apitypes.AppSpec{Name: f.Name, Image: f.Image, Command: strings.Fields(f.Command)}
	if f.Instances != "" {
		n, err := strconv.Atoi(f.Instances)
		if err != nil || n < 0 {
			errs["instances"] = "instances must be a whole number, 0 or more"
		} else {
			spec.Instances = &n
		}
	}
	whole := func(field, v string, min int) int {
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			errs[field] = field + " must be a whole number, " + strconv.Itoa(min) + " or more"
			return 0
		}
		return n
	}
	spec.CPU, spec.Memory = whole("cpu", f.CPU, 1), whole("memory", f.Memory, 1)
	spec.Pools = strings.FieldsFunc(f.Pools, func(r rune) bool { return r == ',' || r == ' ' })
	if f.Strategy != "" || f.MaxSurge != "" || f.MaxUnavailable != "" {
		spec.Strategy = &apitypes.Strategy{Type: f.Strategy,
			MaxSurge: whole("max_surge", f.MaxSurge, 0), MaxUnavailable: whole("max_unavailable", f.MaxUnavailable, 0)}
	}
	if f.Health != "" {
		spec.Health = &apitypes.Health{HTTP: f.Health}
	}
	for _, p := range strings.FieldsFunc(f.Ports, func(r rune) bool { return r == ',' || r == ' ' }) {
		port, err := parsePort(p)
		if err != nil {
			errs["ports"] = err.Error()
			break
		}
		spec.Ports = append(spec.Ports, port)
	}
	for _, line := range strings.Split(f.Env, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			errs["env"] = "each line of env is KEY=VALUE"
			break
		}
		if spec.Env == nil {
			spec.Env = map[string]string{}
		}
		spec.Env[strings.TrimSpace(k)] = v
	}
	return spec, errs
}

// parsePort reads "8080", "http:8080" or "53/udp".
func parsePort(s string) (apitypes.Port, error) {
	var p apitypes.Port
	if name, rest, ok := strings.Cut(s, ":"); ok {
		p.Name, s = name, rest
	}
	if num, proto, ok := strings.Cut(s, "/"); ok {
		s, p.Protocol = num, proto
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return p, errors.New("a port is NUMBER, NAME:NUMBER or NUMBER/udp, with NUMBER from 1 to 65535")
	}
	p.ContainerPort = n
	return p, nil
}

type appData struct {
	Tenant, Name string
	App          *apitypes.App
	Instances    []apitypes.Instance
	Versions     []apitypes.AppVersion
	Routes       []apitypes.Route
	Logs         logsData
	Charts       []chart
	Filter       logFilter  // the log view's filters
	Range        chartRange // the charts' time range
	Ranges       []chartRange
	Forms        appForms
}

// logsData is the newest log lines of an app, or why they cannot be read.
type logsData struct {
	Lines []apitypes.LogLine
	Error string
}

// logLines is how many of the newest log lines the app page shows.
const logLines = 100

func (c *Console) loadLogs(ctx context.Context, s *session, tenant, name string, f logFilter) logsData {
	var d logsData
	o := client.LogOptions{Tenant: tenant, Limit: logLines, Grep: f.Grep, Instance: f.Instance}
	err := c.client(s).Apps().Logs(ctx, name, o, func(l apitypes.LogLine) error {
		d.Lines = append(d.Lines, l)
		return nil
	})
	d.Error = errText(err)
	return d
}

// logsFragment is the app page's log lines alone, which the page's
// script reloads.
func (c *Console) logsFragment(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	c.renderFragment(w, "logs", c.loadLogs(ctx, s, r.PathValue("tenant"), r.PathValue("app"), readLogFilter(r)))
}

func appURL(tenant, app string) string { return "/ui/apps/" + tenant + "/" + app }

// loadApp reads what the app page shows.
func (c *Console) loadApp(ctx context.Context, s *session, tenant, name string, f logFilter, cr chartRange) (appData, error) {
	cl := c.client(s)
	o := &client.QueryOptions{Tenant: tenant}
	d := appData{Tenant: tenant, Name: name, Filter: f, Range: cr, Ranges: chartRanges}
	app, _, err := cl.Apps().Get(ctx, name, o)
	if err != nil {
		return d, err
	}
	d.App = app
	if d.Instances, _, err = cl.Apps().Instances(ctx, name, o); err != nil {
		return d, err
	}
	sortInstances(d.Instances)
	if d.Versions, _, err = cl.Apps().Versions(ctx, name, o); err != nil {
		return d, err
	}
	slices.Reverse(d.Versions)
	d.Routes, _, _ = cl.Routes().List(ctx, name, o)
	d.Forms = c.loadAppForms(ctx, s, tenant, name)
	d.Logs = c.loadLogs(ctx, s, tenant, name, f)
	now := c.cfg.Now()
	if ms, _, err := cl.Apps().Metrics(ctx, name, cr.query(tenant, now)); err == nil {
		if st, _, err := cl.Apps().Stats(ctx, name, min(cr.Span, statsSpan), o); err == nil && len(st) > 0 {
			ms = append(ms, requestSeries(st))
		}
		d.Charts = chartsOver(ms, now.Add(-cr.Span).Unix(), now.Unix())
	}
	return d, nil
}

func sortInstances(is []apitypes.Instance) {
	slices.SortFunc(is, func(a, b apitypes.Instance) int { return strings.Compare(a.ID, b.ID) })
}

func (c *Console) app(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderApp(w, r, s, http.StatusOK, "")
}

func (c *Console) renderApp(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	tenant, name := r.PathValue("tenant"), r.PathValue("app")
	cr, rangeErr := readChartRange(r)
	d, err := c.loadApp(ctx, s, tenant, name, readLogFilter(r), cr)
	v := c.view(s, "apps", tenant+"/"+name, d)
	v.Error = msg
	if rangeErr != nil && err == nil {
		v.Error, code = rangeErr.Error(), http.StatusBadRequest
	}
	if err != nil {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "app", v)
}

// instancesFragment is the app page's instance table alone, which the
// page's script reloads.
func (c *Console) instancesFragment(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	is, _, err := c.client(s).Apps().Instances(ctx, r.PathValue("app"), &client.QueryOptions{Tenant: r.PathValue("tenant")})
	if err != nil {
		http.Error(w, errText(err), statusOf(err))
		return
	}
	sortInstances(is)
	c.renderFragment(w, "instances", is)
}

func (c *Console) scale(w http.ResponseWriter, r *http.Request, s *session) {
	tenant, name := r.PathValue("tenant"), r.PathValue("app")
	n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("instances")))
	if err != nil || n < 0 {
		c.renderApp(w, r, s, http.StatusUnprocessableEntity, "Not scaled: instances must be a whole number, 0 or more.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	if _, err := c.client(s).Apps().Scale(ctx, name, n, &client.WriteOptions{Tenant: tenant}); err != nil {
		c.renderApp(w, r, s, statusOf(err), "Not scaled: "+errText(err))
		return
	}
	c.log.Info("console: app scaled", "tenant", tenant, "app", name, "instances", n, "session_user", s.Name)
	http.Redirect(w, r, appURL(tenant, name), http.StatusSeeOther)
}

func (c *Console) rollback(w http.ResponseWriter, r *http.Request, s *session) {
	tenant, name := r.PathValue("tenant"), r.PathValue("app")
	v, err := strconv.Atoi(r.PostForm.Get("version"))
	if err != nil || v < 1 {
		c.renderApp(w, r, s, http.StatusUnprocessableEntity, "Not rolled back: no version given.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	if _, err := c.client(s).Apps().Rollback(ctx, name, v, &client.WriteOptions{Tenant: tenant}); err != nil {
		c.renderApp(w, r, s, statusOf(err), "Not rolled back: "+errText(err))
		return
	}
	c.log.Info("console: app rolled back", "tenant", tenant, "app", name, "version", v, "session_user", s.Name)
	http.Redirect(w, r, appURL(tenant, name), http.StatusSeeOther)
}

// maxEvents bounds the events page to the newest ones.
const maxEvents = 200

func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	es, _, err := c.client(s).Events(ctx, 0, nil)
	slices.Reverse(es)
	if len(es) > maxEvents {
		es = es[:maxEvents]
	}
	c.list(w, s, "events", "Events", es, err)
}

type billingData struct {
	Tenant  string
	Tenants []string
	Bills   []apitypes.Bill
}

func (c *Console) billing(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	d := billingData{Tenant: s.Tenant}
	var err error
	if s.Admin() {
		d.Tenant = r.URL.Query().Get("tenant")
		var ts []apitypes.Tenant
		ts, _, err = cl.Tenants().List(ctx, nil)
		for _, t := range ts {
			d.Tenants = append(d.Tenants, t.Name)
		}
	}
	if d.Tenant != "" && err == nil {
		d.Bills, err = cl.Bills(ctx, "", "", &client.QueryOptions{Tenant: d.Tenant})
		slices.Reverse(d.Bills)
	}
	c.list(w, s, "billing", "Billing", d, err)
}

// list renders a read-only page.
func (c *Console) list(w http.ResponseWriter, s *session, page, title string, data any, err error) {
	v := c.view(s, page, title, data)
	code := http.StatusOK
	if err != nil {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, page, v)
}
