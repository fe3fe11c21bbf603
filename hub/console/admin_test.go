package console_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
	"github.com/wharf-platform/wharf/providers"
)

// okCloud accepts every credential check: the provider form's tests are
// about the console, not a cloud.
type okCloud struct{}

func (okCloud) Check(context.Context) error { return nil }
func (okCloud) Create(context.Context, providers.CreateRequest) (providers.Machine, error) {
	return providers.Machine{}, errors.ErrUnsupported
}
func (okCloud) Delete(context.Context, string) error { return errors.ErrUnsupported }
func (okCloud) Describe(context.Context, string) (providers.Machine, error) {
	return providers.Machine{}, errors.ErrUnsupported
}
func (okCloud) List(context.Context, string) ([]providers.Machine, error) {
	return nil, errors.ErrUnsupported
}
func (okCloud) Shape(context.Context, providers.Template) (providers.Resources, bool, error) {
	return providers.Resources{}, false, nil
}

// adminEnv is env with the cluster at hand (to enroll hosts through
// Raft), a pool "p1", and tokens of every tenant role of "alpha".
type adminEnv struct {
	*env
	c                          *hubtest.Cluster
	tenantAdmin, developer     string
	viewerB, devB, adminB, taB *browser
	adminCSRF, viewerCSRF      string
	devCSRF, taCSRF            string
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	c := hubtest.New(t, 1, hubtest.Options{
		OpenProvider: func(providers.Account) (providers.Provider, error) { return okCloud{}, nil },
		SuspectAfter: time.Hour, DownAfter: 2 * time.Hour,
	})
	u := c.Nodes[0].URL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, b := bootstrap(t, ctx, u)
	if _, err := api.Tenants().Create(ctx, apitypes.TenantRequest{Name: "alpha"}); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, err := api.Apps().Create(ctx, apitypes.AppSpec{Name: "web-alpha", Image: "web:1", Instances: &one}, &client.WriteOptions{Tenant: "alpha"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Pools().Create(ctx, apitypes.PoolRequest{Name: "p1", Datacenter: "dc1"}); err != nil {
		t.Fatal(err)
	}
	tok := func(role apitypes.Role) string {
		v, err := api.Tokens().Create(ctx, apitypes.TokenRequest{Name: string(role) + "-alpha", Role: role, Tenant: "alpha"})
		if err != nil {
			t.Fatal(err)
		}
		return v.Secret
	}
	e := &adminEnv{env: &env{url: u, admin: b.Token, viewer: tok(apitypes.RoleViewer), api: api}, c: c,
		tenantAdmin: tok(apitypes.RoleTenantAdmin), developer: tok(apitypes.RoleDeveloper)}
	e.adminB, e.viewerB, e.devB, e.taB = newBrowser(t, u), newBrowser(t, u), newBrowser(t, u), newBrowser(t, u)
	e.adminCSRF, e.viewerCSRF = e.adminB.login(e.admin), e.viewerB.login(e.viewer)
	e.devCSRF, e.taCSRF = e.devB.login(e.developer), e.taB.login(e.tenantAdmin)
	return e
}

// enroll writes hosts into pool p1 through Raft, as an agent's enrolment
// would (no agent runs; liveness waits an hour).
func (e *adminEnv) enroll(t *testing.T, names ...string) []string {
	t.Helper()
	leader := e.c.WaitLeader(10 * time.Second).Hub()
	apply := func(mt state.MessageType, req any) {
		msg, err := state.Encode(mt, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Cluster().Apply(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	apply(state.JoinTokenCreateType, &state.JoinTokenCreateRequest{Token: state.JoinToken{ID: "jt-test", Pool: "p1", SecretHash: "s"}, Time: now})
	var ids []string
	for _, n := range names {
		id := "h-" + n
		apply(state.HostEnrollType, &state.HostEnrollRequest{TokenID: "jt-test", SecretHash: "s", Time: now,
			Host: state.Host{ID: id, Name: n, Inventory: state.Inventory{CPUs: 4, MemoryBytes: 8 << 30, Drivers: []string{"docker"}, AgentVersion: "v9.8.7"}}})
		ids = append(ids, id)
	}
	return ids
}

// noForm fails if a page has any action form of a path.
func noForm(t *testing.T, who, page, action string) {
	t.Helper()
	if strings.Contains(page, `action="`+action) {
		t.Errorf("%s's page has a form posting to %s", who, action)
	}
}

func TestHostDrainAndRemoveForms(t *testing.T) {
	e := newAdminEnv(t)
	ids := e.enroll(t, "alpha-1", "alpha-2")
	ctx := context.Background()

	resp, page := e.adminB.get("/ui/hosts")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `href="/ui/hosts/`+ids[0]+`"`) || !strings.Contains(page, "v9.8.7") {
		t.Fatalf("the hosts page answered %d without the hosts and their agent version:\n%s", resp.StatusCode, page)
	}
	resp, page = e.adminB.get("/ui/hosts/" + ids[0])
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="host-agent">v9.8.7`) || !strings.Contains(page, `id="host-cert"`) {
		t.Fatalf("the host page answered %d without agent version and certificate expiry:\n%s", resp.StatusCode, page)
	}
	for _, f := range []string{`id="drain"`, `id="remove"`} {
		if !strings.Contains(page, f) {
			t.Fatalf("the admin's host page has no %s form", f)
		}
	}

	// Without the CSRF token: 403, nothing changes.
	for _, a := range []string{"drain", "remove"} {
		if resp, _ := e.adminB.post("/ui/hosts/"+ids[0]+"/"+a, url.Values{}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without CSRF answered %d, want 403", a, resp.StatusCode)
		}
	}
	if h, _, err := e.api.Hosts().Get(ctx, ids[0], nil); err != nil || h.State != "ready" {
		t.Fatalf("refused posts changed the host: %+v %v", h, err)
	}

	// A tenant's developer and viewer get no form, and their posts are
	// refused by the API.
	for who, b := range map[string]*browser{"viewer": e.viewerB, "developer": e.devB} {
		_, page := b.get("/ui/hosts/" + ids[0])
		noForm(t, who, page, "/ui/hosts/")
		resp, page := b.get("/ui/hosts")
		if resp.StatusCode != http.StatusForbidden || strings.Contains(page, "<form method=\"get\"") {
			t.Errorf("%s's hosts page answered %d (want the API's 403, no filter):\n%s", who, resp.StatusCode, page)
		}
	}
	if resp, _ := e.devB.post("/ui/hosts/"+ids[0]+"/drain", url.Values{"csrf": {e.devCSRF}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a developer's drain answered %d, want 403", resp.StatusCode)
	}

	// The admin drains one host and removes the other.
	if resp, body := e.adminB.post("/ui/hosts/"+ids[0]+"/drain", url.Values{"csrf": {e.adminCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain answered %d:\n%s", resp.StatusCode, body)
	}
	if h, _, err := e.api.Hosts().Get(ctx, ids[0], nil); err != nil || h.State != "draining" {
		t.Fatalf("after drain: %+v %v", h, err)
	}
	_, page = e.adminB.get("/ui/hosts/" + ids[0])
	if strings.Contains(page, `id="drain"`) || !strings.Contains(page, `id="undrain"`) || !strings.Contains(page, `id="host-state">draining`) {
		t.Fatalf("a draining host's page still offers drain, offers no undrain, or hides its state:\n%s", page)
	}
	if resp, _ := e.adminB.post("/ui/hosts/"+ids[0]+"/undrain", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("undrain without CSRF answered %d, want 403", resp.StatusCode)
	}
	if resp, body := e.adminB.post("/ui/hosts/"+ids[0]+"/undrain", url.Values{"csrf": {e.adminCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("undrain answered %d:\n%s", resp.StatusCode, body)
	}
	if h, _, err := e.api.Hosts().Get(ctx, ids[0], nil); err != nil || h.State != "ready" {
		t.Fatalf("after undrain: %+v %v", h, err)
	}
	if resp, body := e.adminB.post("/ui/hosts/"+ids[1]+"/remove", url.Values{"csrf": {e.adminCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove answered %d:\n%s", resp.StatusCode, body)
	}
	if _, _, err := e.api.Hosts().Get(ctx, ids[1], nil); apitypes.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("after remove the host is still there (err %v)", err)
	}
	// An action the API refuses is shown on the host page.
	resp, body := e.adminB.post("/ui/hosts/no-such-host/drain", url.Values{"csrf": {e.adminCSRF}})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "Not drained") {
		t.Fatalf("draining a missing host answered %d:\n%s", resp.StatusCode, body)
	}
}

func TestPoolForms(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	if _, err := e.api.Providers().Create(ctx, apitypes.ProviderRequest{Name: "cloud1", Type: "aws", Region: "us-east-1",
		Credentials: []byte(`{"access_key_id":"AKIA1","secret_access_key":"s3cr3t"}`)}); err != nil {
		t.Fatal(err)
	}
	e.enroll(t, "n1")

	_, page := e.adminB.get("/ui/pools")
	if !strings.Contains(page, `id="pool"`) || !strings.Contains(page, "<meter") || !strings.Contains(page, `<option>cloud1</option>`) {
		t.Fatalf("the admin's pools page lacks the form, the usage bars or the account:\n%s", page)
	}
	create := url.Values{"name": {"auto"}, "datacenter": {"dc2"}, "account": {"cloud1"}, "template": {"instance_type=t3.small, image=ami-1"},
		"min_hosts": {"1"}, "max_hosts": {"3"}}
	if resp, _ := e.adminB.post("/ui/pools", create); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("create without CSRF answered %d, want 403", resp.StatusCode)
	}
	if _, _, err := e.api.Pools().Get(ctx, "auto", nil); apitypes.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("a refused create made the pool (err %v)", err)
	}
	// What the API refuses comes back next to its field, the form kept.
	bad := url.Values{"csrf": {e.adminCSRF}}
	for k, v := range create {
		bad[k] = v
	}
	bad.Set("max_hosts", "0")
	resp, body := e.adminB.post("/ui/pools", bad)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `data-field="max_hosts"`) || !strings.Contains(body, `value="auto"`) {
		t.Fatalf("max_hosts 0 answered %d without the field error or the kept form:\n%s", resp.StatusCode, body)
	}
	bad.Set("max_hosts", "3")
	bad.Set("name", "Bad_Name")
	resp, body = e.adminB.post("/ui/pools", bad)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="name"`) {
		t.Fatalf("a bad name answered %d without the field error:\n%s", resp.StatusCode, body)
	}

	create.Set("csrf", e.adminCSRF)
	if resp, body := e.adminB.post("/ui/pools", create); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create answered %d:\n%s", resp.StatusCode, body)
	}
	p, _, err := e.api.Pools().Get(ctx, "auto", nil)
	if err != nil || p.Datacenter != "dc2" || p.Provision == nil || p.Provision.MaxHosts != 3 || !strings.Contains(string(p.Provision.Template), `"instance_type":"t3.small"`) {
		t.Fatalf("the created pool: %+v %v", p, err)
	}
	// Update: the edit link fills the form; the post replaces the pool.
	_, page = e.adminB.get("/ui/pools?edit=auto")
	if !strings.Contains(page, `action="/ui/pools/auto"`) || !strings.Contains(page, `value="dc2"`) {
		t.Fatalf("the edit form is not filled in:\n%s", page)
	}
	update := url.Values{"csrf": {e.adminCSRF}, "datacenter": {"dc2"}, "account": {"cloud1"}, "template": {`{"instance_type":"t3.large","image":"ami-1"}`}, "min_hosts": {"0"}, "max_hosts": {"5"}}
	if resp, body := e.adminB.post("/ui/pools/auto", update); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update answered %d:\n%s", resp.StatusCode, body)
	}
	if p, _, err = e.api.Pools().Get(ctx, "auto", nil); err != nil || p.Provision.MaxHosts != 5 || !strings.Contains(string(p.Provision.Template), "t3.large") {
		t.Fatalf("the updated pool: %+v %v", p, err)
	}
	// What the form does not show survives an update.
	if _, err := e.api.Pools().Create(ctx, apitypes.PoolRequest{Name: "gpu", Datacenter: "dc1", Labels: map[string]string{"gpu": "a100"}, Drivers: []string{"docker"}}); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.adminB.post("/ui/pools/gpu", url.Values{"csrf": {e.adminCSRF}, "datacenter": {"dc3"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("update answered %d:\n%s", resp.StatusCode, body)
	}
	if p, _, err = e.api.Pools().Get(ctx, "gpu", nil); err != nil || p.Datacenter != "dc3" || p.Labels["gpu"] != "a100" || len(p.Drivers) != 1 {
		t.Fatalf("the update lost the pool's labels or drivers: %+v %v", p, err)
	}

	// Viewers and developers get the table (with the ready host's
	// capacity) but no form; a forged create is refused by the API.
	for who, b := range map[string]*browser{"viewer": e.viewerB, "developer": e.devB} {
		resp, page := b.get("/ui/pools")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-pool="p1"`) {
			t.Fatalf("%s's pools page answered %d:\n%s", who, resp.StatusCode, page)
		}
		noForm(t, who, page, "/ui/pools")
	}
	f := url.Values{"csrf": {e.devCSRF}, "name": {"mine"}}
	if resp, _ := e.devB.post("/ui/pools", f); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a developer's pool create answered %d, want 403", resp.StatusCode)
	}
}

func TestTokenForms(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()

	// The new token is shown once, in the answer, and works.
	form := url.Values{"name": {"ci"}, "role": {"developer"}, "tenant": {"alpha"}}
	if resp, _ := e.adminB.post("/ui/tokens", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("token create without CSRF answered %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", e.adminCSRF)
	resp, body := e.adminB.post("/ui/tokens", form)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(body, `id="new-token"`) {
		t.Fatalf("token create answered %d:\n%s", resp.StatusCode, body)
	}
	m := valueOf(t, body, "new-token-value")
	ci, err := client.New(client.Config{Address: e.url, Token: m})
	if err != nil {
		t.Fatal(err)
	}
	self, err := ci.Tokens().Self(ctx)
	if err != nil || self.Role != apitypes.RoleDeveloper || self.Tenant != "alpha" {
		t.Fatalf("the shown token: %+v %v", self, err)
	}
	if _, page := e.adminB.get("/ui/tokens"); strings.Contains(page, m) || !strings.Contains(page, `data-id="`+self.ID+`"`) {
		t.Fatal("the tokens page shows the secret again, or lacks the new token")
	}
	// A field the API refuses.
	resp, body = e.adminB.post("/ui/tokens", url.Values{"csrf": {e.adminCSRF}, "name": {"x"}, "role": {"viewer"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="tenant"`) {
		t.Fatalf("a viewer token without tenant answered %d:\n%s", resp.StatusCode, body)
	}
	// Revoke: without CSRF refused; with it the token stops working.
	if resp, _ := e.adminB.post("/ui/tokens/"+self.ID+"/revoke", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoke without CSRF answered %d", resp.StatusCode)
	}
	if _, err := ci.Tokens().Self(ctx); err != nil {
		t.Fatalf("a refused revoke revoked: %v", err)
	}
	if resp, body := e.adminB.post("/ui/tokens/"+self.ID+"/revoke", url.Values{"csrf": {e.adminCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke answered %d:\n%s", resp.StatusCode, body)
	}
	if _, err := ci.Tokens().Self(ctx); apitypes.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a revoked token still works (err %v)", err)
	}

	// A tenant-admin creates tokens in its own tenant only, never admin ones.
	_, page := e.taB.get("/ui/tokens")
	if !strings.Contains(page, `id="token"`) || strings.Contains(page, `<option>admin</option>`) || strings.Contains(page, `id="join-token"`) {
		t.Fatalf("the tenant-admin's token page:\n%s", page)
	}
	resp, body = e.taB.post("/ui/tokens", url.Values{"csrf": {e.taCSRF}, "name": {"bot"}, "role": {"viewer"}, "tenant": {"beta"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the tenant-admin's create answered %d:\n%s", resp.StatusCode, body)
	}
	bot, _ := client.New(client.Config{Address: e.url, Token: valueOf(t, body, "new-token-value")})
	if self, err := bot.Tokens().Self(ctx); err != nil || self.Tenant != "alpha" {
		t.Fatalf("the tenant-admin's token is not alpha's: %+v %v", self, err)
	}
	// Viewers and developers get no token forms; their posts are refused.
	for who, b := range map[string]*browser{"viewer": e.viewerB, "developer": e.devB} {
		_, page := b.get("/ui/tokens")
		noForm(t, who, page, "/ui/tokens")
		noForm(t, who, page, "/ui/join-tokens")
		_, page = b.get("/ui/")
		if strings.Contains(page, `href="/ui/tokens"`) {
			t.Errorf("%s's navigation links the tokens page", who)
		}
	}
	if resp, _ := e.devB.post("/ui/tokens", url.Values{"csrf": {e.devCSRF}, "name": {"x"}, "role": {"viewer"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a developer's token create answered %d, want 403", resp.StatusCode)
	}

	// Join tokens: created for a pool, shown once, revoked.
	jt := url.Values{"pool": {"p1"}, "ttl": {"2h"}, "uses": {"3"}}
	if resp, _ := e.adminB.post("/ui/join-tokens", jt); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("join token without CSRF answered %d", resp.StatusCode)
	}
	jt.Set("csrf", e.adminCSRF)
	resp, body = e.adminB.post("/ui/join-tokens", jt)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(valueOf(t, body, "new-join-token-value"), "WJ1.") {
		t.Fatalf("join token create answered %d:\n%s", resp.StatusCode, body)
	}
	jts, _, err := e.api.JoinTokens().List(ctx, nil)
	if err != nil || len(jts) != 1 || jts[0].Uses != 3 || jts[0].Pool != "p1" {
		t.Fatalf("join tokens after create: %+v %v", jts, err)
	}
	resp, body = e.adminB.post("/ui/join-tokens", url.Values{"csrf": {e.adminCSRF}, "pool": {"p1"}, "ttl": {"soon"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `data-field="ttl"`) {
		t.Fatalf("a bad ttl answered %d:\n%s", resp.StatusCode, body)
	}
	if resp, body := e.adminB.post("/ui/join-tokens/"+jts[0].ID+"/revoke", url.Values{"csrf": {e.adminCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("join token revoke answered %d:\n%s", resp.StatusCode, body)
	}
	if jts, _, _ = e.api.JoinTokens().List(ctx, nil); len(jts) != 0 {
		t.Fatalf("after revoke: %+v", jts)
	}
}

// valueOf returns the value of the input with this id.
func valueOf(t *testing.T, page, id string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `id="`+id+`"`)
	if !ok {
		t.Fatalf("no #%s in:\n%s", id, page)
	}
	_, rest, ok = strings.Cut(rest, `value="`)
	v, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 || v == "" {
		t.Fatalf("#%s has no value", id)
	}
	return v
}

func TestTenantForms(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	_, page := e.adminB.get("/ui/tenants")
	if !strings.Contains(page, `id="tenant"`) || !strings.Contains(page, "<td>alpha</td>") {
		t.Fatalf("the admin's tenants page:\n%s", page)
	}
	form := url.Values{"name": {"gamma"}, "pools": {"p1"}, "quota_instances": {"10"}}
	if resp, _ := e.adminB.post("/ui/tenants", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("create without CSRF answered %d", resp.StatusCode)
	}
	if _, _, err := e.api.Tenants().Get(ctx, "gamma", nil); apitypes.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("a refused create made the tenant (err %v)", err)
	}
	resp, body := e.adminB.post("/ui/tenants", url.Values{"csrf": {e.adminCSRF}, "name": {"gamma"}, "quota_instances": {"ten"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `data-field="quota_instances"`) {
		t.Fatalf("a bad quota answered %d:\n%s", resp.StatusCode, body)
	}
	resp, body = e.adminB.post("/ui/tenants", url.Values{"csrf": {e.adminCSRF}, "name": {"alpha"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "not created") {
		t.Fatalf("a taken name answered %d:\n%s", resp.StatusCode, body)
	}
	form.Set("csrf", e.adminCSRF)
	if resp, body := e.adminB.post("/ui/tenants", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create answered %d:\n%s", resp.StatusCode, body)
	}
	tn, _, err := e.api.Tenants().Get(ctx, "gamma", nil)
	if err != nil || tn.Quota.Instances != 10 || len(tn.Pools) != 1 || tn.Pools[0] != "p1" {
		t.Fatalf("the created tenant: %+v %v", tn, err)
	}
	for who, b := range map[string]*browser{"tenant-admin": e.taB, "viewer": e.viewerB} {
		_, page := b.get("/ui/tenants")
		noForm(t, who, page, "/ui/tenants")
	}
	if resp, _ := e.taB.post("/ui/tenants", url.Values{"csrf": {e.taCSRF}, "name": {"delta"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a tenant-admin's tenant create answered %d, want 403", resp.StatusCode)
	}
}

func TestProviderForms(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	const secret = "wJalrXUtnFEMI-K7MDENG"
	form := url.Values{"name": {"aws1"}, "type": {"aws"}, "region": {"eu-west-1"}, "credentials": {"access_key_id=AKIA9, secret_access_key=" + secret}}
	if resp, _ := e.adminB.post("/ui/providers", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("add without CSRF answered %d", resp.StatusCode)
	}
	if ps, _, _ := e.api.Providers().List(ctx, nil); len(ps) != 0 {
		t.Fatalf("a refused add made %d accounts", len(ps))
	}
	// A refused add never shows the credentials back.
	bad := url.Values{"csrf": {e.adminCSRF}, "name": {"aws1"}, "type": {"gce"}, "credentials": form["credentials"]}
	resp, body := e.adminB.post("/ui/providers", bad)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="type"`) || strings.Contains(body, secret) {
		t.Fatalf("an unknown type answered %d (field error, no secret):\n%s", resp.StatusCode, body)
	}
	form.Set("csrf", e.adminCSRF)
	if resp, body := e.adminB.post("/ui/providers", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add answered %d:\n%s", resp.StatusCode, body)
	}
	resp, page := e.adminB.get("/ui/providers")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-name="aws1"`) || !strings.Contains(page, "<td>set</td>") || strings.Contains(page, secret) || !strings.Contains(page, `id="machines-table"`) {
		t.Fatalf("the providers page answered %d:\n%s", resp.StatusCode, page)
	}
	// An account a pool uses cannot be removed: the API's 409 is shown.
	if _, err := e.api.Pools().Create(ctx, apitypes.PoolRequest{Name: "auto", Provision: &apitypes.Provision{Provider: "aws1", Template: []byte(`{"instance_type":"t3.small","image":"ami-1"}`), MaxHosts: 1}}); err != nil {
		t.Fatal(err)
	}
	resp, body = e.adminB.post("/ui/providers/aws1/remove", url.Values{"csrf": {e.adminCSRF}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "Not removed") {
		t.Fatalf("removing a used account answered %d:\n%s", resp.StatusCode, body)
	}
	if err := e.api.Pools().Delete(ctx, "auto"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.adminB.post("/ui/providers/aws1/remove", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("remove without CSRF answered %d", resp.StatusCode)
	}
	if resp, body := e.adminB.post("/ui/providers/aws1/remove", url.Values{"csrf": {e.adminCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove answered %d:\n%s", resp.StatusCode, body)
	}
	if ps, _, _ := e.api.Providers().List(ctx, nil); len(ps) != 0 {
		t.Fatalf("after remove: %+v", ps)
	}
	for who, b := range map[string]*browser{"tenant-admin": e.taB, "viewer": e.viewerB} {
		_, page := b.get("/ui/providers")
		noForm(t, who, page, "/ui/providers")
	}
	if resp, _ := e.taB.post("/ui/providers", url.Values{"csrf": {e.taCSRF}, "name": {"x"}, "type": {"aws"}, "credentials": {"a=b"}}); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a tenant-admin's add answered %d, want a refusal", resp.StatusCode)
	}
	if ps, _, _ := e.api.Providers().List(ctx, nil); len(ps) != 0 {
		t.Fatalf("a tenant-admin's add made an account: %+v", ps)
	}
}

func TestAppRoutesCertsCanaryAndDiff(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	o := &client.WriteOptions{Tenant: "alpha"}
	app := "/ui/apps/alpha/web-alpha"

	// Routes.
	route := url.Values{"host": {"www.example.com"}, "path": {"/shop"}}
	if resp, _ := e.devB.post(app+"/routes", route); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("route add without CSRF answered %d", resp.StatusCode)
	}
	resp, body := e.devB.post(app+"/routes", url.Values{"csrf": {e.devCSRF}, "host": {"not a domain"}, "path": {"/"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="host"`) || !strings.Contains(body, `value="not a domain"`) {
		t.Fatalf("a bad domain answered %d:\n%s", resp.StatusCode, body)
	}
	route.Set("csrf", e.devCSRF)
	if resp, body := e.devB.post(app+"/routes", route); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("route add answered %d:\n%s", resp.StatusCode, body)
	}
	var id string
	rs, _, err := e.api.Routes().List(ctx, "web-alpha", &client.QueryOptions{Tenant: "alpha"})
	for _, r := range rs {
		if r.Host == "www.example.com" && r.Path == "/shop" {
			id = r.ID
		}
	}
	if id == "" || err != nil {
		t.Fatalf("routes after add: %+v %v", rs, err)
	}
	_, page := e.viewerB.get(app)
	if !strings.Contains(page, "www.example.com") {
		t.Fatalf("the viewer's app page does not list the route:\n%s", page)
	}
	for _, a := range []string{app + "/routes", app + "/certs", app + "/promote", app + "/abort"} {
		noForm(t, "viewer", page, a)
	}
	if resp, _ := e.viewerB.post(app+"/routes/"+id+"/remove", url.Values{"csrf": {e.viewerCSRF}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's route remove answered %d, want 403", resp.StatusCode)
	}
	if resp, body := e.devB.post(app+"/routes/"+id+"/remove", url.Values{"csrf": {e.devCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("route remove answered %d:\n%s", resp.StatusCode, body)
	}
	if rs, _, _ = e.api.Routes().List(ctx, "web-alpha", &client.QueryOptions{Tenant: "alpha"}); len(rs) != 1 || !rs[0].Default {
		t.Fatalf("routes after remove: %+v", rs)
	}

	// Certificates: a PEM pair added through the form, the key never
	// shown back; removed again.
	certPEM, keyPEM := selfSigned(t, "www.example.com")
	cert := url.Values{"domain": {"www.example.com"}, "cert": {certPEM}, "key": {keyPEM}}
	if resp, _ := e.devB.post(app+"/certs", cert); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cert add without CSRF answered %d", resp.StatusCode)
	}
	resp, body = e.devB.post(app+"/certs", url.Values{"csrf": {e.devCSRF}, "domain": {"www.example.com"}, "cert": {"junk"}, "key": {keyPEM}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="cert"`) || strings.Contains(body, "PRIVATE KEY") {
		t.Fatalf("a bad certificate answered %d (field error, no key shown):\n%s", resp.StatusCode, body)
	}
	cert.Set("csrf", e.devCSRF)
	if resp, body := e.devB.post(app+"/certs", cert); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cert add answered %d:\n%s", resp.StatusCode, body)
	}
	if cs, _, err := e.api.Certs().List(ctx, &client.QueryOptions{Tenant: "alpha"}); err != nil || len(cs) != 1 {
		t.Fatalf("certs after add: %+v %v", cs, err)
	}
	if _, page = e.devB.get(app); !strings.Contains(page, `class="cert"><td>www.example.com</td>`) {
		t.Fatalf("the app page does not list the certificate:\n%s", page)
	}
	if resp, body := e.devB.post(app+"/certs/www.example.com/remove", url.Values{"csrf": {e.devCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cert remove answered %d:\n%s", resp.StatusCode, body)
	}
	if cs, _, _ := e.api.Certs().List(ctx, &client.QueryOptions{Tenant: "alpha"}); len(cs) != 0 {
		t.Fatalf("certs after remove: %+v", cs)
	}

	// A canary: the page offers promote and abort while it waits.
	if _, page = e.devB.get(app); strings.Contains(page, `id="canary"`) {
		t.Fatal("the app page shows a canary before there is one")
	}
	two := 2
	for i, img := range []string{"web:2", "web:3"} {
		if _, _, _, err := e.api.Apps().Put(ctx, apitypes.AppSpec{Name: "web-alpha", Image: img, Instances: &two, Env: map[string]string{"N": fmt.Sprint(i)},
			Strategy: &apitypes.Strategy{Type: "canary", Canary: 1, Weight: 10}}, o); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := e.api.Apps().Promote(ctx, "web-alpha", o); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, _, err := e.api.Apps().Get(ctx, "web-alpha", &client.QueryOptions{Tenant: "alpha"})
	if err != nil || got.CanaryFrom == 0 {
		t.Fatalf("no canary waits: %+v %v", got, err)
	}
	_, page = e.devB.get(app)
	if !strings.Contains(page, `id="promote"`) || !strings.Contains(page, `id="abort"`) {
		t.Fatalf("the app page offers no promote and abort during a canary:\n%s", page)
	}
	if _, page = e.viewerB.get(app); !strings.Contains(page, `id="canary"`) || strings.Contains(page, `id="promote"`) {
		t.Fatal("the viewer should see the canary without its actions")
	}
	if resp, _ := e.devB.post(app+"/promote", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("promote without CSRF answered %d", resp.StatusCode)
	}
	if resp, body := e.devB.post(app+"/abort", url.Values{"csrf": {e.devCSRF}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("abort answered %d:\n%s", resp.StatusCode, body)
	}
	if got, _, err = e.api.Apps().Get(ctx, "web-alpha", &client.QueryOptions{Tenant: "alpha"}); err != nil || got.CanaryFrom != 0 || got.Image != "web:2" {
		t.Fatalf("after abort: %+v %v", got, err)
	}
	// Promote with nothing to promote: the API's refusal is shown.
	resp, body = e.devB.post(app+"/promote", url.Values{"csrf": {e.devCSRF}})
	if resp.StatusCode < 400 || !strings.Contains(body, "The canary was not promoted") {
		t.Fatalf("promote without a canary answered %d:\n%s", resp.StatusCode, body)
	}

	// The diff of two versions lists the fields that changed, only those.
	_, page = e.viewerB.get(app)
	if !strings.Contains(page, `id="diff"`) {
		t.Fatalf("the app page has no version comparison:\n%s", page)
	}
	resp, page = e.viewerB.get(app + "/diff?from=1&to=3")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<code>image</code>") || !strings.Contains(page, "&#34;web:1&#34;") ||
		!strings.Contains(page, "&#34;web:3&#34;") || !strings.Contains(page, "<code>env.N</code>") || strings.Contains(page, "<code>memory</code>") {
		t.Fatalf("the diff of v1 and v3 answered %d:\n%s", resp.StatusCode, page)
	}
	if resp, _ = e.viewerB.get(app + "/diff?from=1&to=99"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a diff with a missing version answered %d, want 404", resp.StatusCode)
	}
}

func TestListsArePaged(t *testing.T) {
	e := newAdminEnv(t)
	names := make([]string, 0, 230)
	for i := range 230 {
		names = append(names, fmt.Sprintf("node-%03d", i))
	}
	e.enroll(t, names...)
	_, page := e.adminB.get("/ui/hosts")
	if n := strings.Count(page, `<tr class="host"`); n != 100 {
		t.Fatalf("the first page of hosts has %d rows, want 100", n)
	}
	if !strings.Contains(page, `href="/ui/hosts?page=2"`) || !strings.Contains(page, "230 of 230 hosts") {
		t.Fatalf("the first page has no link to the next or no count:\n%s", page)
	}
	_, page = e.adminB.get("/ui/hosts?page=3")
	if n := strings.Count(page, `<tr class="host"`); n != 30 || !strings.Contains(page, "node-229") || strings.Contains(page, "node-000<") {
		t.Fatalf("the last page has %d rows:\n%s", n, page)
	}
	_, page = e.adminB.get("/ui/hosts?q=node-05")
	if n := strings.Count(page, `<tr class="host"`); n != 10 || !strings.Contains(page, "10 of 230 hosts") {
		t.Fatalf("the filter node-05 shows %d rows", n)
	}
	// The live table reloads the same page and filter.
	if !strings.Contains(page, `data-refresh="/ui/hosts/table?q=node-05"`) {
		t.Fatalf("the live table does not keep the filter:\n%s", page)
	}
	resp, frag := e.adminB.get("/ui/hosts/table?q=node-05")
	if resp.StatusCode != http.StatusOK || strings.Count(frag, `<tr class="host"`) != 10 {
		t.Fatalf("the filtered fragment answered %d:\n%s", resp.StatusCode, frag)
	}
	if !strings.Contains(page, `id="host-groups"`) || !strings.Contains(page, "ready: 230") {
		t.Fatalf("no summary by pool:\n%s", page)
	}
}

// selfSigned returns a PEM certificate for a domain, valid for a day, and
// its PEM key.
func selfSigned(t *testing.T, domain string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func TestAppListIsPagedWithAFilter(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	// A short list has no filter: nothing to find.
	if _, page := e.viewerB.get("/ui/apps"); strings.Contains(page, `id="app-filter"`) {
		t.Fatal("a one-app list shows the filter")
	}
	zero := 0
	for i := range 120 {
		if _, err := e.api.Apps().Create(ctx, apitypes.AppSpec{Name: fmt.Sprintf("svc-%03d", i), Image: "x:1", Instances: &zero}, &client.WriteOptions{Tenant: "alpha"}); err != nil {
			t.Fatal(err)
		}
	}
	_, page := e.adminB.get("/ui/apps")
	if n := strings.Count(page, `<tr class="app">`); n != 100 || !strings.Contains(page, `id="app-filter"`) || !strings.Contains(page, `href="/ui/apps?page=2"`) {
		t.Fatalf("the first page of 121 apps has %d rows (want 100, a filter and a next link):\n%s", n, page)
	}
	_, page = e.adminB.get("/ui/apps?page=2")
	if n := strings.Count(page, `<tr class="app">`); n != 21 || !strings.Contains(page, `href="/ui/apps?page=1"`) {
		t.Fatalf("the second page has %d rows, want 21", n)
	}
	_, page = e.adminB.get("/ui/apps?q=svc-11")
	if n := strings.Count(page, `<tr class="app">`); n != 10 || !strings.Contains(page, "10 apps match") {
		t.Fatalf("the filter svc-11 shows %d rows", n)
	}
}
