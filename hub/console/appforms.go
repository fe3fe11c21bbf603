package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// appForms is what the app page adds for routes, certificates and
// versions: the tenant's certificates and the forms, as typed when an
// action was refused.
type appForms struct {
	Certs     []apitypes.Cert
	RouteForm form
	CertForm  form
	Observe   appObserve // alert rules and log drains
}

func (c *Console) loadAppForms(ctx context.Context, s *session, tenant, name string) appForms {
	f := appForms{RouteForm: blank(map[string]string{"path": "/"}), CertForm: blank(nil), Observe: c.loadObserve(ctx, s, tenant, name)}
	f.Certs, _, _ = c.client(s).Certs().List(ctx, &client.QueryOptions{Tenant: tenant})
	slices.SortFunc(f.Certs, func(a, b apitypes.Cert) int { return strings.Compare(a.Domain, b.Domain) })
	return f
}

// renderAppForms renders the app page again after a refused action, with
// the form that was refused kept and its errors next to its fields.
func (c *Console) renderAppForms(w http.ResponseWriter, r *http.Request, s *session, code int, msg string, set func(*appForms)) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	tenant, name := r.PathValue("tenant"), r.PathValue("app")
	// A POST carries no filter or range: the page's defaults.
	d, err := c.loadApp(ctx, s, tenant, name, logFilter{}, chartRanges[defaultRange])
	set(&d.Forms)
	v := c.view(s, "apps", tenant+"/"+name, d)
	v.Error = msg
	if err != nil {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "app", v)
}

func (c *Console) addRoute(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, "host", "path", "tcp", "port", "target_port")
	req := apitypes.RouteRequest{Host: f.V["host"], Path: f.V["path"], TCP: f.V["tcp"] != "",
		Port: f.number("port", 0), TargetPort: f.number("target_port", 0)}
	if req.TCP && req.Path == "/" {
		req.Path = "" // the form's default path is for HTTP routes
	}
	fail := func(code int, msg string) {
		c.renderAppForms(w, r, s, code, msg, func(a *appForms) { a.RouteForm = f })
	}
	if f.failed() {
		fail(http.StatusUnprocessableEntity, "The route was not added: see the fields below.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	rt, err := c.client(s).Routes().Add(ctx, r.PathValue("app"), req, tenantOpts(r))
	if err != nil {
		f.apiError(err, nil)
		fail(statusOf(err), "The route was not added: "+errText(err))
		return
	}
	c.log.Info("console: route added", "tenant", r.PathValue("tenant"), "app", r.PathValue("app"), "route", rt.ID, "session_user", s.Name)
	redirect(w, r, appURL(r.PathValue("tenant"), r.PathValue("app"))+"#routes")
}

func (c *Console) removeRoute(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	if err := c.client(s).Routes().Delete(ctx, r.PathValue("app"), r.PathValue("id"), tenantOpts(r)); err != nil {
		c.renderAppForms(w, r, s, statusOf(err), "The route was not removed: "+errText(err), func(*appForms) {})
		return
	}
	c.log.Info("console: route removed", "tenant", r.PathValue("tenant"), "app", r.PathValue("app"), "route", r.PathValue("id"), "session_user", s.Name)
	redirect(w, r, appURL(r.PathValue("tenant"), r.PathValue("app"))+"#routes")
}

func (c *Console) addCert(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, "domain", "cert", "key")
	req := apitypes.CertRequest{Domain: f.V["domain"], Cert: f.V["cert"], Key: f.V["key"]}
	f.V["key"] = "" // a private key is never shown back
	ctx, cancel := apiCtx(r)
	defer cancel()
	if _, err := c.client(s).Certs().Add(ctx, req, tenantOpts(r)); err != nil {
		f.apiError(err, nil)
		c.renderAppForms(w, r, s, statusOf(err), "The certificate was not added: "+errText(err), func(a *appForms) { a.CertForm = f })
		return
	}
	c.log.Info("console: certificate added", "tenant", r.PathValue("tenant"), "domain", req.Domain, "session_user", s.Name)
	redirect(w, r, appURL(r.PathValue("tenant"), r.PathValue("app"))+"#certs")
}

func (c *Console) removeCert(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	if err := c.client(s).Certs().Delete(ctx, r.PathValue("domain"), tenantOpts(r)); err != nil {
		c.renderAppForms(w, r, s, statusOf(err), "The certificate was not removed: "+errText(err), func(*appForms) {})
		return
	}
	c.log.Info("console: certificate removed", "tenant", r.PathValue("tenant"), "domain", r.PathValue("domain"), "session_user", s.Name)
	redirect(w, r, appURL(r.PathValue("tenant"), r.PathValue("app"))+"#certs")
}

func (c *Console) promote(w http.ResponseWriter, r *http.Request, s *session) {
	c.endCanary(w, r, s, true)
}

func (c *Console) abort(w http.ResponseWriter, r *http.Request, s *session) {
	c.endCanary(w, r, s, false)
}

func (c *Console) endCanary(w http.ResponseWriter, r *http.Request, s *session, promote bool) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	apps, verb := c.client(s).Apps(), "aborted"
	call := apps.Abort
	if promote {
		call, verb = apps.Promote, "promoted"
	}
	if _, err := call(ctx, r.PathValue("app"), tenantOpts(r)); err != nil {
		c.renderAppForms(w, r, s, statusOf(err), "The canary was not "+verb+": "+errText(err), func(*appForms) {})
		return
	}
	c.log.Info("console: canary "+verb, "tenant", r.PathValue("tenant"), "app", r.PathValue("app"), "session_user", s.Name)
	redirect(w, r, appURL(r.PathValue("tenant"), r.PathValue("app")))
}

// diffRow is one field of a version's spec that differs between two
// versions ("" where a version does not set it).
type diffRow struct {
	Field, From, To string
}

type diffData struct {
	Tenant, App string
	From, To    int
	Versions    []int
	Rows        []diffRow
}

// diff compares two versions of an app field by field.
func (c *Console) diff(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	tenant, name := r.PathValue("tenant"), r.PathValue("app")
	d := diffData{Tenant: tenant, App: name}
	title := fmt.Sprintf("%s/%s: versions compared", tenant, name)
	vs, _, err := c.client(s).Apps().Versions(ctx, name, &client.QueryOptions{Tenant: tenant})
	if err != nil {
		c.list(w, s, "diff", title, d, err)
		return
	}
	byNum := map[int]apitypes.VersionSpec{}
	for _, v := range vs {
		byNum[v.Version] = v.Spec
		d.Versions = append(d.Versions, v.Version)
	}
	slices.Sort(d.Versions)
	d.From, _ = strconv.Atoi(r.URL.Query().Get("from"))
	d.To, _ = strconv.Atoi(r.URL.Query().Get("to"))
	from, okFrom := byNum[d.From]
	to, okTo := byNum[d.To]
	if !okFrom || !okTo {
		v := c.view(s, "apps", title, d)
		v.Error = fmt.Sprintf("Choose two versions of %s (it has %d).", name, len(d.Versions))
		c.render(w, http.StatusNotFound, "diff", v)
		return
	}
	d.Rows = diffSpecs(from, to)
	c.list(w, s, "diff", title, d, nil)
}

// diffSpecs lists the fields (as JSON paths) whose values differ.
func diffSpecs(a, b apitypes.VersionSpec) []diffRow {
	fa, fb := flatten(a), flatten(b)
	var rows []diffRow
	for k, va := range fa {
		if vb := fb[k]; vb != va {
			rows = append(rows, diffRow{Field: k, From: va, To: vb})
		}
	}
	for k, vb := range fb {
		if _, ok := fa[k]; !ok {
			rows = append(rows, diffRow{Field: k, To: vb})
		}
	}
	slices.SortFunc(rows, func(x, y diffRow) int { return strings.Compare(x.Field, y.Field) })
	return rows
}

// flatten turns a value into its JSON leaves by path ("env.KEY",
// "ports[0].container_port").
func flatten(v any) map[string]string {
	out := map[string]string{}
	b, err := json.Marshal(v)
	if err != nil {
		return out
	}
	var tree any
	if json.Unmarshal(b, &tree) != nil {
		return out
	}
	var walk func(path string, x any)
	walk = func(path string, x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, v := range t {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, v)
			}
		case []any:
			for i, v := range t {
				walk(fmt.Sprintf("%s[%d]", path, i), v)
			}
		default:
			leaf, _ := json.Marshal(t)
			out[path] = string(leaf)
		}
	}
	walk("", tree)
	return out
}
