package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// env is a one-node hub cluster with an admin token, two tenants with an
// app each, and a viewer token of tenant "alpha".
type env struct {
	url, admin, viewer string
	api                *client.Client
	hubs               *hubtest.Cluster
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := hubtest.New(t, 1, hubtest.Options{})
	u := c.Nodes[0].URL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, b := bootstrap(t, ctx, u)
	for _, tn := range []string{"alpha", "beta"} {
		if _, err := api.Tenants().Create(ctx, apitypes.TenantRequest{Name: tn}); err != nil {
			t.Fatal(err)
		}
		one := 1
		if _, err := api.Apps().Create(ctx, apitypes.AppSpec{Name: "web-" + tn, Image: "web:1", Instances: &one}, &client.WriteOptions{Tenant: tn}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := api.Tokens().Create(ctx, apitypes.TokenRequest{Name: "watcher", Role: apitypes.RoleViewer, Tenant: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{url: u, admin: b.Token, viewer: v.Secret, api: api, hubs: c}
}

// bootstrap takes the admin token of the hub at u and returns a client
// acting with it.
func bootstrap(t *testing.T, ctx context.Context, u string) (*client.Client, *apitypes.BootstrapResponse) {
	t.Helper()
	anon, err := client.New(client.Config{Address: u})
	if err != nil {
		t.Fatal(err)
	}
	b, err := anon.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api, err := client.New(client.Config{Address: u, Token: b.Token})
	if err != nil {
		t.Fatal(err)
	}
	return api, b
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the first form of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in page:\n%s", page)
	}
	return m[1]
}

// login signs in through the form and returns the console's CSRF token.
func (b *browser) login(token string) string {
	b.t.Helper()
	_, page := b.get("/ui/login")
	resp, body := b.post("/ui/login", url.Values{"csrf": {csrf(b.t, page)}, "token": {token}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		b.t.Fatalf("login answered %d (Location %q):\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	_, page = b.get("/ui/apps")
	return csrf(b.t, page)
}

func TestRedirectsAndSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.url)
	resp, _ := b.get("/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET / answered %d, Location %q; want 302 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Signed out, every page sends the browser to the login form.
	for _, p := range []string{"/ui/", "/ui/apps", "/ui/hosts", "/ui/apps/alpha/web-alpha"} {
		resp, _ := b.get(p)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("signed out GET %s answered %d, Location %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	}
	b.login(e.admin)
	for _, p := range []string{"/", "/ui/login", "/ui/", "/ui/apps", "/ui/hosts", "/ui/pools", "/ui/events", "/ui/drills", "/ui/billing", "/ui/billing?tenant=alpha", "/ui/apps/alpha/web-alpha", "/ui/static/console.js"} {
		resp, body := b.get(p)
		if resp.StatusCode >= 400 {
			t.Errorf("GET %s answered %d:\n%s", p, resp.StatusCode, body)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", p, k, got, v)
			}
		}
	}
	resp, _ = b.get("/ui/static/console.js")
	if !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("the script has no cache header: %q", resp.Header.Get("Cache-Control"))
	}
	// The API still answers beside the console.
	if _, err := e.api.Status(context.Background()); err != nil {
		t.Fatalf("the API behind the console: %v", err)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)

	b := newBrowser(t, e.url)
	_, page := b.get("/ui/login")
	resp, _ := b.post("/ui/login", url.Values{"csrf": {csrf(t, page)}, "token": {"wharf_not-a-token"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong token answered %d, want 401", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "wharf_session" && ck.Value != "" {
			t.Fatal("a wrong token got a session cookie")
		}
	}
	// The login form has its own CSRF token too.
	resp, _ = b.post("/ui/login", url.Values{"token": {e.admin}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a login without the form's CSRF token answered %d, want 403", resp.StatusCode)
	}

	_, page = b.get("/ui/login")
	resp, _ = b.post("/ui/login", url.Values{"csrf": {csrf(t, page)}, "token": {e.admin}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login answered %d, want 303", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "wharf_session" {
			sess = ck
		}
	}
	if sess == nil {
		t.Fatal("login set no wharf_session cookie")
	}
	if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie HttpOnly=%v SameSite=%v, want HttpOnly and Strict", sess.HttpOnly, sess.SameSite)
	}
	if strings.Contains(sess.Value, e.admin) || strings.Contains(e.admin, sess.Value) || len(sess.Value) < 32 {
		t.Fatalf("session cookie %q is not a random id apart from the token", sess.Value)
	}
	resp, body := b.get("/ui/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Overview") {
		t.Fatalf("signed in, GET /ui/ answered %d:\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, e.admin) {
		t.Fatal("a page shows the API token")
	}

	// Logout needs the CSRF token, then ends the session.
	resp, _ = b.post("/ui/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF answered %d, want 403", resp.StatusCode)
	}
	resp, _ = b.post("/ui/logout", url.Values{"csrf": {csrf(t, body)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout answered %d", resp.StatusCode)
	}
	// The old session id no longer works, even sent by hand.
	old := newBrowser(t, e.url)
	old.hc.Jar.SetCookies(mustURL(t, e.url+"/ui/"), []*http.Cookie{{Name: "wharf_session", Value: sess.Value}})
	resp, _ = old.get("/ui/apps")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("after logout the old session answered %d", resp.StatusCode)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPostsNeedTheSessionsCSRFToken(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.url)
	token := b.login(e.admin)
	other := newBrowser(t, e.url).login(e.admin) // another session's token

	deploy := url.Values{"tenant": {"alpha"}, "name": {"forged"}, "image": {"web:1"}, "instances": {"1"}}
	scale := url.Values{"instances": {"7"}}
	for _, tc := range []struct{ name, csrf string }{{"missing", ""}, {"wrong", "x" + token}, {"another session's", other}} {
		f := url.Values{}
		for k, v := range deploy {
			f[k] = v
		}
		if tc.csrf != "" {
			f.Set("csrf", tc.csrf)
		}
		if resp, _ := b.post("/ui/apps", f); resp.StatusCode != http.StatusForbidden {
			t.Errorf("deploy with a %s CSRF token answered %d, want 403", tc.name, resp.StatusCode)
		}
		s := url.Values{"instances": scale["instances"]}
		if tc.csrf != "" {
			s.Set("csrf", tc.csrf)
		}
		if resp, _ := b.post("/ui/apps/alpha/web-alpha/scale", s); resp.StatusCode != http.StatusForbidden {
			t.Errorf("scale with a %s CSRF token answered %d, want 403", tc.name, resp.StatusCode)
		}
		if resp, _ := b.post("/ui/apps/alpha/web-alpha/rollback", url.Values{"csrf": {tc.csrf}, "version": {"1"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("rollback with a %s CSRF token answered %d, want 403", tc.name, resp.StatusCode)
		}
	}
	ctx := context.Background()
	if _, _, err := e.api.Apps().Get(ctx, "forged", &client.QueryOptions{Tenant: "alpha"}); apitypes.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("a refused deploy created the app anyway (err %v)", err)
	}
	app, _, err := e.api.Apps().Get(ctx, "web-alpha", &client.QueryOptions{Tenant: "alpha"})
	if err != nil || *app.Instances != 1 {
		t.Fatalf("a refused scale changed the app: %+v %v", app, err)
	}

	// With the right token the same actions go through.
	scale.Set("csrf", token)
	if resp, body := b.post("/ui/apps/alpha/web-alpha/scale", scale); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("scale answered %d:\n%s", resp.StatusCode, body)
	}
	if app, _, err = e.api.Apps().Get(ctx, "web-alpha", &client.QueryOptions{Tenant: "alpha"}); err != nil || *app.Instances != 7 {
		t.Fatalf("after scale: %+v %v", app, err)
	}
	deploy.Set("csrf", token)
	resp, body := b.post("/ui/apps", deploy)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/apps/alpha/forged" {
		t.Fatalf("deploy answered %d (Location %q):\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if _, _, err := e.api.Apps().Get(ctx, "forged", &client.QueryOptions{Tenant: "alpha"}); err != nil {
		t.Fatalf("the deployed app: %v", err)
	}

	// Rollback: the app page offers every other version; the form rolls back.
	if _, _, _, err := e.api.Apps().Put(ctx, apitypes.AppSpec{Name: "web-alpha", Image: "web:2"}, &client.WriteOptions{Tenant: "alpha"}); err != nil {
		t.Fatal(err)
	}
	_, page := b.get("/ui/apps/alpha/web-alpha")
	if !strings.Contains(page, "Roll back to v1") || strings.Contains(page, "Roll back to v2") {
		t.Fatalf("the app page at v2 should offer a rollback to v1 only:\n%s", page)
	}
	if resp, body := b.post("/ui/apps/alpha/web-alpha/rollback", url.Values{"csrf": {token}, "version": {"1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("rollback answered %d:\n%s", resp.StatusCode, body)
	}
	if app, _, err = e.api.Apps().Get(ctx, "web-alpha", &client.QueryOptions{Tenant: "alpha"}); err != nil || app.Image != "web:1" {
		t.Fatalf("after rollback to v1: %+v %v", app, err)
	}
	// A refused rollback is shown on the app page.
	resp, body = b.post("/ui/apps/alpha/web-alpha/rollback", url.Values{"csrf": {token}, "version": {"9"}})
	if resp.StatusCode < 400 || !strings.Contains(body, "Not rolled back") {
		t.Fatalf("a rollback to a missing version answered %d:\n%s", resp.StatusCode, body)
	}
}

func TestDeployFormShowsFieldErrors(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.url)
	token := b.login(e.admin)
	for _, tc := range []struct {
		name  string
		form  url.Values
		code  int
		field string
	}{
		{"instances not a number", url.Values{"tenant": {"alpha"}, "name": {"ok"}, "image": {"x:1"}, "instances": {"many"}}, http.StatusUnprocessableEntity, "instances"},
		{"bad port", url.Values{"tenant": {"alpha"}, "name": {"ok"}, "image": {"x:1"}, "ports": {"http:99999"}}, http.StatusUnprocessableEntity, "ports"},
		{"no tenant", url.Values{"name": {"ok"}, "image": {"x:1"}}, http.StatusUnprocessableEntity, "tenant"},
		{"the API refuses the name", url.Values{"tenant": {"alpha"}, "name": {"Not_A_Name"}, "image": {"x:1"}}, http.StatusBadRequest, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", token)
			resp, body := b.post("/ui/apps", tc.form)
			if resp.StatusCode != tc.code {
				t.Fatalf("answered %d, want %d:\n%s", resp.StatusCode, tc.code, body)
			}
			if !strings.Contains(body, `data-field="`+tc.field+`"`) {
				t.Fatalf("no error next to field %s:\n%s", tc.field, body)
			}
			// What was typed stays in the form.
			if !strings.Contains(body, `value="`+tc.form.Get("name")+`"`) {
				t.Fatalf("the form lost the typed name:\n%s", body)
			}
		})
	}
	apps, _, err := e.api.Apps().List(context.Background(), nil)
	if err != nil || len(apps) != 2 {
		t.Fatalf("refused deploys changed the apps: %d apps, %v", len(apps), err)
	}
}

func TestAdminSeesEveryTenantViewerSeesNoActions(t *testing.T) {
	e := newEnv(t)

	admin := newBrowser(t, e.url)
	admin.login(e.admin)
	_, page := admin.get("/ui/apps")
	for _, want := range []string{`href="/ui/apps/alpha/web-alpha"`, `href="/ui/apps/beta/web-beta"`, `id="deploy"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the admin's apps page lacks %s", want)
		}
	}
	_, page = admin.get("/ui/apps/beta/web-beta")
	if !strings.Contains(page, `id="scale"`) {
		t.Errorf("the admin's app page has no scale form:\n%s", page)
	}

	viewer := newBrowser(t, e.url)
	token := viewer.login(e.viewer) // the logout form still carries one
	_, page = viewer.get("/ui/apps")
	if !strings.Contains(page, `href="/ui/apps/alpha/web-alpha"`) || strings.Contains(page, "web-beta") {
		t.Errorf("a viewer of alpha should see alpha's app only:\n%s", page)
	}
	if strings.Contains(page, `id="deploy"`) {
		t.Error("a viewer sees the deploy form")
	}
	resp, page := viewer.get("/ui/apps/alpha/web-alpha")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="instances-table"`) {
		t.Fatalf("a viewer's app page answered %d:\n%s", resp.StatusCode, page)
	}
	for _, action := range []string{`id="scale"`, `class="rollback"`, `/scale"`, `/rollback"`} {
		if strings.Contains(page, action) {
			t.Errorf("a viewer's app page has %s", action)
		}
	}
	// Another tenant's app is not found for the viewer, as in the API.
	if resp, _ := viewer.get("/ui/apps/beta/web-beta"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a viewer of alpha reading beta's app answered %d, want 404", resp.StatusCode)
	}
	// A forged scale, even with the right CSRF token, is refused by the API.
	resp, _ = viewer.post("/ui/apps/alpha/web-alpha/scale", url.Values{"csrf": {token}, "instances": {"5"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's scale answered %d, want 403", resp.StatusCode)
	}
	app, _, err := e.api.Apps().Get(context.Background(), "web-alpha", &client.QueryOptions{Tenant: "alpha"})
	if err != nil || *app.Instances != 1 {
		t.Fatalf("a viewer's scale changed the app: %+v %v", app, err)
	}

	// The live fragment is the instance table alone.
	resp, frag := viewer.get("/ui/apps/alpha/web-alpha/instances")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(frag, `<table id="instances-table">`) {
		t.Fatalf("instances fragment answered %d:\n%s", resp.StatusCode, frag)
	}
	resp, frag = viewer.get("/ui/apps/alpha/web-alpha/logs")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(frag, `<pre id="logs-lines">`) || !strings.Contains(frag, "No log lines yet.") {
		t.Fatalf("logs fragment answered %d:\n%s", resp.StatusCode, frag)
	}
	for _, p := range []string{"/ui/apps/alpha/web-alpha/instances", "/ui/apps/alpha/web-alpha/logs", "/ui/hosts/table"} {
		if resp, _ := newBrowser(t, e.url).get(p); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("fragment %s without a session answered %d, want 401", p, resp.StatusCode)
		}
	}
}
