package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// fakeCluster is a single-node "cluster" that applies commands straight to
// a real FSM; noLeader makes it answer as a cluster without a leader.
type fakeCluster struct {
	mu       sync.Mutex
	fsm      *state.FSM
	index    uint64
	noLeader bool
	// format is the voters' entry format; zero: state.EntryFormat.
	format int
	// applies counts the commands committed.
	applies int
}

func (f *fakeCluster) EntryFormat() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.format == 0 {
		return state.EntryFormat
	}
	return f.format
}

func (f *fakeCluster) Apply(_ context.Context, msg []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noLeader {
		return 0, &state.Error{Kind: state.KindUnavailable, Msg: "no cluster leader"}
	}
	f.index++
	f.applies++
	if r := f.fsm.Apply(&raft.Log{Index: f.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return f.index, r.(error)
	}
	return f.index, nil
}

func (f *fakeCluster) ConsistentRead(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noLeader {
		return &state.Error{Kind: state.KindUnavailable, Msg: "no cluster leader"}
	}
	return nil
}

func (f *fakeCluster) Status() apitypes.Status {
	return apitypes.Status{Node: "n1", Datacenter: "dc1", State: "leader", Leader: "n1"}
}

type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	cluster *fakeCluster
	api     *Server
	tokens  map[string]string // "admin", "acme/tenant-admin", ... -> secret
	// joinToken is the id of a join token for pool aws-bj.
	joinToken string
}

// newFixture builds the fixture; opts may change the server's config
// (their Cluster is the fixture's).
func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	store, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCluster{fsm: state.NewFSM(store, nil)}
	keys, err := seal.NewKeyring(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	meter, err := billing.NewMeter(billing.MeterConfig{State: store})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: store, Cluster: fc, MaxBodyBytes: 4096, Keys: keys, OpenProvider: openFakeCloud, ProviderCheckTimeout: 200 * time.Millisecond, Usage: meter}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f := &fixture{t: t, srv: srv, cluster: fc, api: s, tokens: map[string]string{}}
	var b apitypes.BootstrapResponse
	f.ok("", "POST", "/v1/bootstrap", nil, &b)
	f.tokens["admin"] = b.Token
	f.ok("admin", "POST", "/v1/pools", apitypes.PoolRequest{Name: "aws-bj", Datacenter: "dc1"}, nil)
	f.ok("admin", "POST", "/v1/pools", apitypes.PoolRequest{Name: "vs-sh", Datacenter: "dc2"}, nil)
	for _, tenant := range []string{"acme", "beta"} {
		f.ok("admin", "POST", "/v1/tenants", apitypes.TenantRequest{Name: tenant, Quota: apitypes.Quota{Instances: 20}}, nil)
		for _, role := range []apitypes.Role{apitypes.RoleTenantAdmin, apitypes.RoleDeveloper, apitypes.RoleViewer} {
			var tok apitypes.Token
			f.ok("admin", "POST", "/v1/tokens", apitypes.TokenRequest{Name: string(role), Role: role, Tenant: tenant}, &tok)
			f.tokens[tenant+"/"+string(role)] = tok.Secret
		}
		f.ok("admin", "PUT", "/v1/apps/web?tenant="+tenant, apitypes.AppSpec{Name: "web", Image: "web:1"}, nil)
	}
	// The agent CA (the leader makes it), a join token and an enrolled host.
	ca, err := pki.NewCA("test agents", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	f.applyState(state.AgentCACreateType, &state.AgentCACreateRequest{CA: state.AgentCA{CertPEM: ca.CertPEM(), KeyPEM: ca.KeyPEM(), Fingerprint: ca.Fingerprint()}})
	var jt apitypes.JoinToken
	f.ok("admin", "POST", "/v1/join-tokens", apitypes.JoinTokenRequest{Pool: "aws-bj", Uses: 5}, &jt)
	parsed, err := pki.ParseJoinToken(jt.Token)
	if err != nil || parsed.CAFingerprint != ca.Fingerprint() {
		t.Fatalf("join token %q does not pin the CA: %v", jt.Token, err)
	}
	f.joinToken = jt.ID
	f.applyState(state.HostEnrollType, &state.HostEnrollRequest{TokenID: jt.ID, SecretHash: pki.HashSecret(parsed.Secret), Host: state.Host{ID: "host1", Name: "n1"}, Time: time.Now()})
	return f
}

func (f *fixture) applyState(t state.MessageType, req any) {
	f.t.Helper()
	msg, err := state.Encode(t, req)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.cluster.Apply(context.Background(), msg); err != nil {
		f.t.Fatal(err)
	}
}

// do sends a request as who ("" for no token) and returns status and body.
func (f *fixture) do(who, method, path string, body any) (int, []byte, http.Header) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if who != "" {
		secret, ok := f.tokens[who]
		if !ok {
			secret = who // a literal bad token
		}
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

func (f *fixture) ok(who, method, path string, body, out any) {
	f.t.Helper()
	code, b, _ := f.do(who, method, path, body)
	if code/100 != 2 {
		f.t.Fatalf("%s %s as %q: %d %s", method, path, who, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatal(err)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	f := newFixture(t)
	big := `{"name":"x","image":"` + strings.Repeat("a", 5000) + `"}`
	tests := []struct {
		name, who, method, path string
		body                    any
		code                    int
		field                   string
	}{
		{"unknown field", "acme/developer", "POST", "/v1/apps", `{"name":"a","image":"i","colour":"red"}`, 400, "colour"},
		{"wrong type", "acme/developer", "POST", "/v1/apps", `{"name":"a","image":"i","instances":"two"}`, 400, "instances"},
		{"bad name", "acme/developer", "POST", "/v1/apps", `{"name":"Bad_Name","image":"i"}`, 400, "name"},
		{"out of range", "acme/developer", "POST", "/v1/apps", `{"name":"a","image":"i","instances":-1}`, 400, "instances"},
		{"bad constraint", "acme/developer", "POST", "/v1/apps", `{"name":"a","image":"i","constraints":["label.gpu ~ yes"]}`, 400, "constraints"},
		{"malformed json", "acme/developer", "POST", "/v1/apps", `{"name":`, 400, ""},
		{"trailing data", "acme/developer", "POST", "/v1/apps", `{"name":"a","image":"i"} {}`, 400, ""},
		{"empty body", "admin", "POST", "/v1/tenants", ``, 400, ""},
		{"path/body name mismatch", "acme/developer", "PUT", "/v1/apps/web", `{"name":"other","image":"i"}`, 400, "name"},
		{"admin without tenant", "admin", "POST", "/v1/apps", `{"name":"a","image":"i"}`, 400, "tenant"},
		{"bad cas", "acme/developer", "PUT", "/v1/apps/web?cas=x", `{"image":"i"}`, 400, "cas"},
		{"bad index", "acme/viewer", "GET", "/v1/apps?index=x", nil, 400, "index"},
		{"bad wait", "acme/viewer", "GET", "/v1/apps?index=1&wait=soon", nil, 400, "wait"},
		{"no token", "", "GET", "/v1/apps", nil, 401, ""},
		{"bad token", "wharf_nope", "GET", "/v1/apps", nil, 401, ""},
		{"viewer writes", "acme/viewer", "POST", "/v1/apps", `{"name":"a","image":"i"}`, 403, ""},
		{"developer makes tokens", "acme/developer", "POST", "/v1/tokens", `{"name":"x","role":"viewer"}`, 403, ""},
		{"tenant-admin makes admin", "acme/tenant-admin", "POST", "/v1/tokens", `{"name":"x","role":"admin"}`, 403, ""},
		{"other tenant's app", "acme/developer", "GET", "/v1/apps/web?tenant=beta", nil, 404, ""},
		{"other tenant", "acme/viewer", "GET", "/v1/tenants/beta", nil, 404, ""},
		{"missing app", "acme/viewer", "GET", "/v1/apps/nope", nil, 404, ""},
		{"unknown endpoint", "admin", "GET", "/v1/nope", nil, 404, ""},
		{"wrong method", "admin", "PATCH", "/v1/apps", nil, 405, ""},
		{"name taken", "acme/developer", "POST", "/v1/apps", `{"name":"web","image":"i"}`, 409, "name"},
		{"tenant taken", "admin", "POST", "/v1/tenants", `{"name":"acme"}`, 409, "name"},
		{"stale cas", "acme/developer", "PUT", "/v1/apps/web?cas=1", `{"image":"web:2"}`, 409, ""},
		{"second bootstrap", "", "POST", "/v1/bootstrap", nil, 409, ""},
		{"oversized", "acme/developer", "POST", "/v1/apps", big, 413, ""},
		{"quota", "acme/developer", "POST", "/v1/apps", `{"name":"big","image":"i","instances":50}`, 422, "instances"},
		{"unknown pool", "acme/developer", "POST", "/v1/apps", `{"name":"p","image":"i","pools":["mars"]}`, 422, "pools"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := f.do(tt.who, tt.method, tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("got %d %s, want %d", code, body, tt.code)
			}
			var e apitypes.Error
			if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
				t.Fatalf("error body %q is not {\"error\": ...}", body)
			}
			if e.Field != tt.field {
				t.Fatalf("field %q, want %q (%s)", e.Field, tt.field, e.Message)
			}
		})
	}
	t.Run("no leader", func(t *testing.T) {
		f.cluster.mu.Lock()
		f.cluster.noLeader = true
		f.cluster.mu.Unlock()
		defer func() { f.cluster.mu.Lock(); f.cluster.noLeader = false; f.cluster.mu.Unlock() }()
		for _, r := range []struct{ method, path, body string }{{"GET", "/v1/apps", ""}, {"POST", "/v1/apps", `{"name":"z","image":"i"}`}} {
			code, body, hdr := f.do("acme/developer", r.method, r.path, r.body)
			if code != 503 || hdr.Get("Retry-After") == "" {
				t.Fatalf("%s %s without leader: %d %s", r.method, r.path, code, body)
			}
		}
		// Stale reads still work.
		if code, body, _ := f.do("acme/developer", "GET", "/v1/apps?stale", nil); code != 200 {
			t.Fatalf("stale read without leader: %d %s", code, body)
		}
	})
}

func TestRejectedWritesChangeNothing(t *testing.T) {
	f := newFixture(t)
	before := f.api.cfg.Store.Snapshot().LatestIndex()
	for _, body := range []string{`{"name":"a","image":"i","bogus":1}`, `{"name":"a"}`, `{"name":"a","image":"i","instances":500}`} {
		f.do("acme/developer", "POST", "/v1/apps", body)
	}
	if after := f.api.cfg.Store.Snapshot().LatestIndex(); after != before {
		t.Fatalf("rejected writes moved the index from %d to %d", before, after)
	}
}

// TestRBACMatrix checks every role against every route, for its own tenant
// and for another tenant's objects. A route without a row fails the test.
func TestRBACMatrix(t *testing.T) {
	type expect struct{ admin, tadmin, dev, viewer int }
	all := func(c int) expect { return expect{c, c, c, c} }
	adminOnly := func(c int) expect { return expect{c, 403, 403, 403} }
	// Paths use {own} and {other}; for admin, {own} is tenant acme via ?tenant.
	rows := []struct {
		route  string
		method string
		path   string
		body   string
		own    expect
		other  expect
	}{
		{"GET /v1/status", "GET", "/v1/status", "", all(200), all(200)},
		{"POST /v1/bootstrap", "POST", "/v1/bootstrap", "", all(409), all(409)},
		{"GET /v1/tenants", "GET", "/v1/tenants", "", expect{200, 403, 403, 403}, expect{200, 403, 403, 403}},
		{"POST /v1/tenants", "POST", "/v1/tenants", `{"name":"t-{n}"}`, expect{201, 403, 403, 403}, expect{201, 403, 403, 403}},
		{"GET /v1/tenants/{name}", "GET", "/v1/tenants/{t}", "", all(200), expect{200, 404, 404, 404}},
		{"DELETE /v1/tenants/{name}", "DELETE", "/v1/tenants/{t}", "", expect{409, 403, 403, 403}, expect{409, 403, 403, 403}},
		{"GET /v1/tokens", "GET", "/v1/tokens?tenant={t}", "", expect{200, 200, 403, 403}, expect{200, 404, 403, 403}},
		{"POST /v1/tokens", "POST", "/v1/tokens", `{"name":"x","role":"viewer","tenant":"{t}"}`, expect{201, 201, 403, 403}, expect{201, 403, 403, 403}},
		{"GET /v1/tokens/self", "GET", "/v1/tokens/self", "", all(200), all(200)},
		{"GET /v1/tokens/{id}", "GET", "/v1/tokens/{tok}", "", expect{200, 200, 403, 403}, expect{200, 404, 403, 403}},
		{"DELETE /v1/tokens/{id}", "DELETE", "/v1/tokens/{tok}", "", expect{204, 204, 403, 403}, expect{204, 404, 403, 403}},
		{"GET /v1/pools", "GET", "/v1/pools", "", all(200), all(200)},
		{"POST /v1/pools", "POST", "/v1/pools", `{"name":"p-{n}"}`, expect{201, 403, 403, 403}, expect{201, 403, 403, 403}},
		{"GET /v1/pools/{name}", "GET", "/v1/pools/aws-bj", "", all(200), all(200)},
		{"DELETE /v1/pools/{name}", "DELETE", "/v1/pools/vs-sh", "", expect{204, 403, 403, 403}, expect{404, 403, 403, 403}},
		{"PUT /v1/pools/{name}", "PUT", "/v1/pools/aws-bj", `{"datacenter":"dc1","labels":{"n":"{n}"}}`, adminOnly(200), adminOnly(200)},
		{"GET /v1/providers", "GET", "/v1/providers", "", adminOnly(200), adminOnly(200)},
		{"POST /v1/providers", "POST", "/v1/providers", `{"name":"p-{n}","type":"aws","credentials":{"access_key_id":"a","secret_access_key":"b"}}`, adminOnly(201), adminOnly(201)},
		{"GET /v1/providers/{name}", "GET", "/v1/providers/none", "", adminOnly(404), adminOnly(404)},
		{"PUT /v1/providers/{name}", "PUT", "/v1/providers/none", `{"type":"aws","credentials":{"access_key_id":"a","secret_access_key":"b"}}`, adminOnly(404), adminOnly(404)},
		{"DELETE /v1/providers/{name}", "DELETE", "/v1/providers/none", "", adminOnly(404), adminOnly(404)},
		{"GET /v1/machines", "GET", "/v1/machines", "", adminOnly(200), adminOnly(200)},
		{"GET /v1/registries", "GET", "/v1/registries?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"POST /v1/registries", "POST", "/v1/registries?tenant={t}", `{"server":"r{n}.example.com","username":"u","password":"p"}`, expect{201, 201, 201, 403}, expect{201, 404, 404, 403}},
		{"DELETE /v1/registries/{server}", "DELETE", "/v1/registries/none.example.com?tenant={t}", "", expect{404, 404, 404, 403}, expect{404, 404, 404, 403}},
		{"GET /v1/apps", "GET", "/v1/apps?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"POST /v1/apps", "POST", "/v1/apps?tenant={t}", `{"name":"a-{n}","image":"i"}`, expect{201, 201, 201, 403}, expect{201, 404, 404, 403}},
		{"GET /v1/apps/{name}", "GET", "/v1/apps/web?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"PUT /v1/apps/{name}", "PUT", "/v1/apps/web?tenant={t}", `{"image":"web:{n}"}`, expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"DELETE /v1/apps/{name}", "DELETE", "/v1/apps/d-{n}?tenant={t}", "", expect{204, 204, 204, 403}, expect{204, 404, 404, 403}},
		{"POST /v1/apps/{name}/scale", "POST", "/v1/apps/web/scale?tenant={t}", `{"instances":2}`, expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"POST /v1/apps/{name}/rollback", "POST", "/v1/apps/web/rollback?tenant={t}", `{"version":1}`, expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"POST /v1/apps/{name}/promote", "POST", "/v1/apps/web/promote?tenant={t}", "", expect{409, 409, 409, 403}, expect{409, 404, 404, 403}},
		{"POST /v1/apps/{name}/abort", "POST", "/v1/apps/web/abort?tenant={t}", "", expect{409, 409, 409, 403}, expect{409, 404, 404, 403}},
		{"GET /v1/apps/{name}/versions", "GET", "/v1/apps/web/versions?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"GET /v1/apps/{name}/history", "GET", "/v1/apps/web/history?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"GET /v1/apps/{name}/instances", "GET", "/v1/apps/web/instances?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"POST /v1/apps/{name}/failback", "POST", "/v1/apps/web/failback?tenant={t}", "", expect{409, 409, 409, 403}, expect{409, 404, 404, 403}},
		{"GET /v1/apps/{name}/autoscale", "GET", "/v1/apps/web/autoscale?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"PUT /v1/apps/{name}/autoscale", "PUT", "/v1/apps/web/autoscale?tenant={t}", `{"max":3,"qps":10}`, expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"DELETE /v1/apps/{name}/autoscale", "DELETE", "/v1/apps/web/autoscale?tenant={t}", "", expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"GET /v1/apps/{name}/metrics", "GET", "/v1/apps/web/metrics?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"GET /v1/hosts/{id}/metrics", "GET", "/v1/hosts/host1/metrics", "", adminOnly(200), adminOnly(200)},
		{"GET /v1/apps/{name}/stats", "GET", "/v1/apps/web/stats?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"GET /v1/apps/{name}/routes", "GET", "/v1/apps/web/routes?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"POST /v1/apps/{name}/routes", "POST", "/v1/apps/web/routes?tenant={t}", `{"host":"r{n}.example.com"}`, expect{201, 201, 201, 403}, expect{201, 404, 404, 403}},
		{"DELETE /v1/apps/{name}/routes/{id}", "DELETE", "/v1/apps/web/routes/r-none?tenant={t}", "", expect{404, 404, 404, 403}, expect{404, 404, 404, 403}},
		{"GET /v1/routes", "GET", "/v1/routes?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"GET /v1/certs", "GET", "/v1/certs?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"POST /v1/certs", "POST", "/v1/certs?tenant={t}", `{"domain":"c{n}.example.com","cert":"x","key":"y"}`, expect{400, 400, 400, 403}, expect{400, 404, 404, 403}},
		{"DELETE /v1/certs/{domain}", "DELETE", "/v1/certs/none.example.com?tenant={t}", "", expect{404, 404, 404, 403}, expect{404, 404, 404, 403}},
		{"GET /v1/join-tokens", "GET", "/v1/join-tokens", "", adminOnly(200), adminOnly(200)},
		{"POST /v1/join-tokens", "POST", "/v1/join-tokens", `{"pool":"aws-bj","ttl":"10m"}`, adminOnly(201), adminOnly(201)},
		{"DELETE /v1/join-tokens/{id}", "DELETE", "/v1/join-tokens/{jt}", "", adminOnly(204), adminOnly(204)},
		{"GET /v1/hosts", "GET", "/v1/hosts", "", adminOnly(200), adminOnly(200)},
		{"GET /v1/hosts/{id}", "GET", "/v1/hosts/host1", "", adminOnly(200), adminOnly(200)},
		{"POST /v1/hosts/{id}/drain", "POST", "/v1/hosts/host1/drain", "", adminOnly(200), adminOnly(200)},
		{"DELETE /v1/hosts/{id}", "DELETE", "/v1/hosts/host1", "", adminOnly(204), adminOnly(204)},
		{"GET /v1/events", "GET", "/v1/events?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"POST /v1/apps/{name}/restart", "POST", "/v1/apps/web/restart?tenant={t}", "", expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"POST /v1/apps/{name}/stop", "POST", "/v1/apps/web/stop?tenant={t}", "", expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"POST /v1/apps/{name}/start", "POST", "/v1/apps/web/start?tenant={t}", "", expect{409, 409, 409, 403}, expect{409, 404, 404, 403}}, // not stopped
		{"POST /v1/hosts/{id}/undrain", "POST", "/v1/hosts/host1/undrain", "", adminOnly(409), adminOnly(409)},                              // not draining
		{"GET /v1/audit", "GET", "/v1/audit?tenant={t}", "", expect{200, 200, 403, 403}, expect{200, 404, 403, 403}},
		{"GET /v1/apps/{name}/exec", "GET", "/v1/apps/web/exec?tenant={t}&cmd=ls", "", expect{409, 409, 409, 403}, expect{409, 404, 404, 403}}, // no running instance
		{"GET /v1/openapi.json", "GET", "/v1/openapi.json", "", all(200), all(200)},
		{"GET /v1/apps/{name}/logs", "GET", "/v1/apps/web/logs?tenant={t}", "", all(503), expect{503, 404, 404, 404}}, // the fixture keeps no logs
		{"POST /v1/apps/{name}/log-drains", "POST", "/v1/apps/web/log-drains?tenant={t}", `{"url":"syslog://d{n}.example.com:514"}`, expect{201, 201, 201, 403}, expect{201, 404, 404, 403}},
		{"GET /v1/apps/{name}/log-drains", "GET", "/v1/apps/web/log-drains?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"DELETE /v1/apps/{name}/log-drains/{id}", "DELETE", "/v1/apps/web/log-drains/d-none?tenant={t}", "", expect{404, 404, 404, 403}, expect{404, 404, 404, 403}},
		{"POST /v1/alerts", "POST", "/v1/alerts?tenant={t}", `{"app":"web","metric":"qps","above":"100"}`, expect{201, 201, 201, 403}, expect{201, 404, 404, 403}},
		{"GET /v1/alerts", "GET", "/v1/alerts?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"DELETE /v1/alerts/{id}", "DELETE", "/v1/alerts/a-none?tenant={t}", "", expect{404, 404, 404, 403}, expect{404, 404, 404, 403}},
		{"GET /v1/usage", "GET", "/v1/usage?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"POST /v1/drills", "POST", "/v1/drills", `{"pool":"aws-bj","mode":"evacuate"}`, adminOnly(201), adminOnly(201)},
		{"GET /v1/drills", "GET", "/v1/drills", "", adminOnly(200), adminOnly(200)},
		{"GET /v1/drills/{id}", "GET", "/v1/drills/d-none", "", adminOnly(404), adminOnly(404)},
		{"POST /v1/drills/{id}/end", "POST", "/v1/drills/d-none/end", "", adminOnly(404), adminOnly(404)},
		{"POST /v1/plans", "POST", "/v1/plans", `{"name":"p-{n}","currency":"USD"}`, adminOnly(201), adminOnly(201)},
		{"GET /v1/plans", "GET", "/v1/plans", "", all(200), all(200)},
		{"GET /v1/plans/{name}", "GET", "/v1/plans/none", "", all(404), all(404)},
		{"DELETE /v1/plans/{name}", "DELETE", "/v1/plans/none", "", adminOnly(404), adminOnly(404)},
		{"PUT /v1/tenants/{name}", "PUT", "/v1/tenants/{t}", `{"budget_hard_stop":true}`, expect{200, 200, 403, 403}, expect{200, 404, 404, 404}},
		{"GET /v1/bills", "GET", "/v1/bills?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"GET /v1/invoices", "GET", "/v1/invoices?tenant={t}", "", all(404), all(404)}, // no plan: no invoice
		{"GET /v1/apps/{name}/secrets", "GET", "/v1/apps/web/secrets?tenant={t}", "", all(200), expect{200, 404, 404, 404}},
		{"PUT /v1/apps/{name}/secrets", "PUT", "/v1/apps/web/secrets?tenant={t}", `{"K{n}":"v"}`, expect{200, 200, 200, 403}, expect{200, 404, 404, 403}},
		{"DELETE /v1/apps/{name}/secrets/{key}", "DELETE", "/v1/apps/web/secrets/NONE?tenant={t}", "", expect{404, 404, 404, 403}, expect{404, 404, 404, 403}},
	}
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.route] = true
	}
	for _, route := range newFixture(t).api.Routes() {
		if !covered[route] {
			t.Errorf("route %s has no row in the RBAC matrix", route)
		}
	}
	n := 0
	for _, r := range rows {
		for _, side := range []string{"own", "other"} {
			want := r.own
			if side == "other" {
				want = r.other
			}
			for _, role := range []string{"admin", "tenant-admin", "developer", "viewer"} {
				code := map[string]int{"admin": want.admin, "tenant-admin": want.tadmin, "developer": want.dev, "viewer": want.viewer}[role]
				t.Run(fmt.Sprintf("%s/%s/%s", r.route, side, role), func(t *testing.T) {
					f := newFixture(t)
					n++
					who, target := "admin", "acme"
					if role != "admin" {
						who = "acme/" + role
					}
					if side == "other" {
						target = "beta"
					}
					// An object of the target tenant to act on.
					var tok apitypes.Token
					f.ok("admin", "POST", "/v1/tokens", apitypes.TokenRequest{Name: "victim", Role: apitypes.RoleViewer, Tenant: target}, &tok)
					f.ok("admin", "PUT", "/v1/apps/d-"+strconv.Itoa(n)+"?tenant="+target, apitypes.AppSpec{Name: "d-" + strconv.Itoa(n), Image: "i"}, nil)
					if r.route == "DELETE /v1/pools/{name}" && side == "other" {
						f.ok("admin", "DELETE", "/v1/pools/vs-sh", nil, nil) // admin "other": already gone
					}
					rep := strings.NewReplacer("{t}", target, "{tok}", tok.ID, "{n}", strconv.Itoa(n), "{jt}", f.joinToken)
					path, body := rep.Replace(r.path), rep.Replace(r.body)
					var b any
					if body != "" {
						b = body
					}
					got, resp, _ := f.do(who, r.method, path, b)
					if got != code {
						t.Fatalf("%s %s as %s: %d %s, want %d", r.method, path, who, got, resp, code)
					}
				})
			}
		}
	}
}

func TestBlockingQuery(t *testing.T) {
	f := newFixture(t)
	_, _, hdr := f.do("acme/viewer", "GET", "/v1/apps", nil)
	idx, err := strconv.ParseUint(hdr.Get("X-Wharf-Index"), 10, 64)
	if err != nil || idx == 0 {
		t.Fatalf("X-Wharf-Index %q", hdr.Get("X-Wharf-Index"))
	}
	// Nothing changes: answers after the wait with the same index.
	start := time.Now()
	code, _, hdr2 := f.do("acme/viewer", "GET", fmt.Sprintf("/v1/apps?index=%d&wait=200ms", idx), nil)
	if code != 200 || hdr2.Get("X-Wharf-Index") != hdr.Get("X-Wharf-Index") || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("idle blocking query: %d index %s after %s", code, hdr2.Get("X-Wharf-Index"), time.Since(start))
	}
	// A write wakes it with a higher index.
	done := make(chan string, 1)
	go func() {
		_, body, h := f.do("acme/viewer", "GET", fmt.Sprintf("/v1/apps?index=%d&wait=10s", idx), nil)
		done <- h.Get("X-Wharf-Index") + " " + string(body)
	}()
	time.Sleep(50 * time.Millisecond)
	f.ok("acme/developer", "POST", "/v1/apps", apitypes.AppSpec{Name: "new", Image: "i"}, nil)
	select {
	case got := <-done:
		n, _ := strconv.ParseUint(strings.Fields(got)[0], 10, 64)
		if n <= idx || !strings.Contains(got, `"new"`) {
			t.Fatalf("woken answer %s, want index > %d with the new app", got, idx)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query not woken by a write")
	}
}

func TestAppLifecycle(t *testing.T) {
	f := newFixture(t)
	var app apitypes.App
	code, body, _ := f.do("acme/developer", "PUT", "/v1/apps/api", apitypes.AppSpec{Image: "api:1", Instances: ptr(2)})
	if code != 201 || json.Unmarshal(body, &app) != nil || app.Version != 1 || app.Tenant != "acme" || app.CPU != apitypes.DefaultCPU {
		t.Fatalf("create: %d %s", code, body)
	}
	f.ok("acme/developer", "PUT", fmt.Sprintf("/v1/apps/api?cas=%d", app.ModifyIndex), apitypes.AppSpec{Image: "api:2"}, &app)
	if app.Version != 2 || *app.Instances != 2 {
		t.Fatalf("update: %+v", app)
	}
	var vs []apitypes.AppVersion
	f.ok("acme/viewer", "GET", "/v1/apps/api/versions", nil, &vs)
	if len(vs) != 2 || vs[0].Spec.Image != "api:1" {
		t.Fatalf("versions: %+v", vs)
	}
	f.ok("acme/developer", "POST", "/v1/apps/api/rollback", apitypes.RollbackRequest{Version: 1}, &app)
	if app.Version != 1 || app.Image != "api:1" || app.LatestVersion != 2 {
		t.Fatalf("rollback: %+v", app)
	}
	var hist []apitypes.Deployment
	f.ok("acme/viewer", "GET", "/v1/apps/api/history", nil, &hist)
	if len(hist) != 3 || hist[0].Kind != "create" || hist[1].Kind != "update" || hist[2].Kind != "rollback" || hist[2].Version != 1 || hist[2].From != 2 {
		t.Fatalf("history: %+v", hist)
	}
	f.ok("acme/developer", "DELETE", "/v1/apps/api", nil, nil)
	if code, _, _ := f.do("acme/viewer", "GET", "/v1/apps/api", nil); code != 404 {
		t.Fatalf("deleted app answers %d", code)
	}
	// A revoked token stops working at once.
	var tok apitypes.Token
	f.ok("acme/tenant-admin", "POST", "/v1/tokens", apitypes.TokenRequest{Name: "ci", Role: apitypes.RoleDeveloper}, &tok)
	f.tokens["ci"] = tok.Secret
	f.ok("ci", "GET", "/v1/tokens/self", nil, nil)
	f.ok("acme/tenant-admin", "DELETE", "/v1/tokens/"+tok.ID, nil, nil)
	if code, _, _ := f.do("ci", "GET", "/v1/apps", nil); code != 401 {
		t.Fatalf("revoked token answers %d", code)
	}
}

func ptr(n int) *int { return &n }

func TestHostsAndEvents(t *testing.T) {
	f := newFixture(t)
	var hosts []apitypes.Host
	f.ok("admin", "GET", "/v1/hosts?pool=aws-bj", nil, &hosts)
	if len(hosts) != 1 || hosts[0].ID != "host1" || hosts[0].State != "ready" || hosts[0].Datacenter != "dc1" {
		t.Fatalf("hosts %+v", hosts)
	}
	var h apitypes.Host
	f.ok("admin", "POST", "/v1/hosts/host1/drain", nil, &h)
	if h.State != "draining" {
		t.Fatalf("drained host %+v", h)
	}
	var evs []apitypes.Event
	f.ok("admin", "GET", "/v1/events", nil, &evs)
	if len(evs) != 2 || evs[0].Type != "host.enrolled" || evs[1].Type != "host.state" || !strings.Contains(evs[1].Message, "draining") {
		t.Fatalf("events %+v", evs)
	}
	var later []apitypes.Event
	f.ok("admin", "GET", fmt.Sprintf("/v1/events?after=%d", evs[0].Index), nil, &later)
	if len(later) != 1 {
		t.Fatalf("events after %d: %+v", evs[0].Index, later)
	}
	if code, body, _ := f.do("admin", "POST", "/v1/join-tokens", `{"pool":"mars"}`); code != 422 {
		t.Fatalf("join token for a missing pool: %d %s", code, body)
	}
	if code, body, _ := f.do("admin", "POST", "/v1/join-tokens", `{"pool":"aws-bj","ttl":"forever"}`); code != 400 {
		t.Fatalf("bad ttl: %d %s", code, body)
	}
	f.ok("admin", "DELETE", "/v1/join-tokens/"+f.joinToken, nil, nil)
	var toks []apitypes.JoinToken
	f.ok("admin", "GET", "/v1/join-tokens", nil, &toks)
	if len(toks) != 0 {
		t.Fatalf("revoked token still listed: %+v", toks)
	}
}

// A handler that fails after its answer began (a client gone in the middle
// of it, say) leaves the answer as it was: no error is written into its
// body, nor a second status.
func TestErrorAfterTheAnswerBegan(t *testing.T) {
	f := newFixture(t)
	f.api.handle("GET /v1/test-partial", public, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("partial"))
		return errors.New("the client left")
	})
	code, body, _ := f.do("", "GET", "/v1/test-partial", nil)
	if code != http.StatusAccepted || string(body) != "partial" {
		t.Fatalf("answer of a handler that failed after it began: %d %q", code, body)
	}
}
