package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/audit"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// auditedFixture is the fixture with the real audit recorder; anonymous
// refusals get a burst of 5 and (practically) no refill.
func auditedFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, func(c *Config) {
		rec, err := audit.New(audit.Config{Cluster: c.Cluster, AnonymousBurst: 5, AnonymousRate: 1e-9})
		if err != nil {
			t.Fatal(err)
		}
		c.Audit = rec
	})
}

func (f *fixture) audit(who, query string) []apitypes.AuditEntry {
	f.t.Helper()
	var es []apitypes.AuditEntry
	f.ok(who, "GET", "/v1/audit"+query, nil, &es)
	return es
}

func TestAuditScriptedSession(t *testing.T) {
	f := auditedFixture(t)
	before := f.audit("admin", "")
	if len(before) == 0 {
		t.Fatal("the fixture's own setup (bootstrap, pools, tenants, tokens) left no audit entry")
	}
	start := before[len(before)-1].Seq
	ids := map[string]string{}
	for _, who := range []string{"admin", "acme/developer", "acme/viewer", "acme/tenant-admin"} {
		var tok apitypes.Token
		f.ok(who, "GET", "/v1/tokens/self", nil, &tok)
		ids[who] = tok.ID
	}
	const secret = "hunter2-AUDIT-SECRET"
	type call struct {
		who, method, path string
		body              any
		status            int
		object, tenant    string // "=id": the answer's id
	}
	script := []call{
		{"admin", "POST", "/v1/tenants", apitypes.TenantRequest{Name: "gamma"}, 201, "gamma", ""},
		{"admin", "POST", "/v1/tokens", apitypes.TokenRequest{Name: "gdev", Role: apitypes.RoleDeveloper, Tenant: "gamma"}, 201, "=id", "gamma"},
		{"acme/developer", "POST", "/v1/apps", apitypes.AppSpec{Name: "api", Image: "api:1"}, 201, "api", "acme"},
		{"acme/developer", "POST", "/v1/apps/api/scale", apitypes.ScaleRequest{Instances: intp(2)}, 200, "api", "acme"},
		{"acme/developer", "POST", "/v1/apps/api/restart", nil, 200, "api", "acme"},
		{"acme/developer", "POST", "/v1/apps/api/stop", nil, 200, "api", "acme"},
		{"acme/developer", "POST", "/v1/apps/api/start", nil, 200, "api", "acme"},
		{"acme/viewer", "POST", "/v1/apps", `{"name":"leak","image":"i","env":{"PASSWORD":"` + secret + `"}}`, 403, "", "acme"},
		{"acme/developer", "POST", "/v1/apps/nope/scale", apitypes.ScaleRequest{Instances: intp(1)}, 404, "nope", "acme"},
		{"acme/developer", "POST", "/v1/apps", apitypes.AppSpec{Name: "api", Image: "api:1"}, 409, "", "acme"},
		{"acme/developer", "POST", "/v1/apps", `{"name":"big","image":"i","instances":50,"env":{"K":"` + secret + `"}}`, 422, "", "acme"},
		{"acme/developer", "POST", "/v1/apps?tenant=acme&token=" + secret, `{"name":"bad name"}`, 400, "", "acme"},
		{"", "POST", "/v1/apps", `{"name":"x","env":{"K":"` + secret + `"}}`, 401, "", ""},
		{"admin", "POST", "/v1/hosts/host1/drain", nil, 200, "host1", ""},
		{"admin", "POST", "/v1/hosts/host1/undrain", nil, 200, "host1", ""},
		{"admin", "POST", "/v1/hosts/host1/undrain", nil, 409, "host1", ""},
		{"acme/developer", "DELETE", "/v1/apps/api", nil, 204, "api", "acme"},
		{"admin", "DELETE", "/v1/tenants/gamma", nil, 204, "gamma", ""},
	}
	var answers []string
	for i, c := range script {
		code, body, _ := f.do(c.who, c.method, c.path, c.body)
		if code != c.status {
			t.Fatalf("call %d %s %s as %q: %d %s, want %d", i, c.method, c.path, c.who, code, body, c.status)
		}
		if c.object == "=id" {
			var x struct{ ID string }
			json.Unmarshal(body, &x)
			script[i].object = x.ID
		}
		answers = append(answers, string(body))
		// Reads are not audited.
		f.ok("admin", "GET", "/v1/apps?tenant=acme", nil, nil)
	}
	all := f.audit("admin", "")
	var got []apitypes.AuditEntry
	for _, e := range all {
		if e.Seq > start {
			got = append(got, e)
		}
	}
	if len(got) != len(script) {
		t.Fatalf("%d audit entries after the session, want one per mutating call (%d): %+v", len(got), len(script), got)
	}
	roles := map[string]string{"admin": "admin", "acme/developer": "developer", "acme/viewer": "viewer"}
	names := map[string]string{"admin": "bootstrap", "acme/developer": "developer", "acme/viewer": "viewer"}
	for i, c := range script {
		e := got[i]
		wantPath, _, _ := strings.Cut(c.path, "?")
		want := apitypes.AuditEntry{Seq: start + uint64(i) + 1, Time: e.Time, Actor: names[c.who], ActorID: ids[c.who], Role: roles[c.who], Tenant: c.tenant,
			Method: c.method, Path: wantPath, Status: c.status, Object: c.object}
		if e != want {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, e, want)
		}
		if e.Time.IsZero() || time.Since(e.Time) > time.Minute {
			t.Errorf("entry %d: time %v", i, e.Time)
		}
	}
	raw, _ := json.Marshal(all)
	for _, s := range append([]string{string(raw)}, answers...) {
		if strings.Contains(s, secret) {
			t.Fatalf("a request body's secret came back in an answer: %s", s)
		}
	}

	// Who sees what.
	for _, e := range f.audit("acme/tenant-admin", "") {
		if e.Tenant != "acme" {
			t.Fatalf("acme's tenant-admin sees an entry of tenant %q: %+v", e.Tenant, e)
		}
	}
	if n := len(f.audit("acme/tenant-admin", "")); n < 10 {
		t.Fatalf("acme's tenant-admin sees %d entries, want its tenant's 12 at least", n)
	}
	for _, e := range f.audit("admin", "?tenant=acme") {
		if e.Tenant != "acme" {
			t.Fatalf("?tenant=acme gave an entry of tenant %q", e.Tenant)
		}
	}
	for _, tt := range []struct {
		who, query string
		code       int
	}{
		{"acme/developer", "", 403},
		{"acme/viewer", "", 403},
		{"beta/tenant-admin", "?tenant=acme", 404},
		{"", "", 401},
		{"admin", "?since=soon", 400},
		{"admin", "?limit=0", 400},
	} {
		if code, body, _ := f.do(tt.who, "GET", "/v1/audit"+tt.query, nil); code != tt.code {
			t.Errorf("GET /v1/audit%s as %q: %d %s, want %d", tt.query, tt.who, code, body, tt.code)
		}
	}
	if es := f.audit("admin", "?limit=2"); len(es) != 2 || es[1].Seq != got[len(got)-1].Seq {
		t.Fatalf("limit=2 gave %+v, want the newest two", es)
	}
	if es := f.audit("admin", "?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); len(es) != 0 {
		t.Fatalf("since an hour ahead gave %d entries", len(es))
	}
	if es := f.audit("admin", "?since=1h"); len(es) != len(all) {
		t.Fatalf("since=1h gave %d entries, want all %d", len(es), len(all))
	}
}

func TestAuditBoundsAnonymousRefusals(t *testing.T) {
	f := auditedFixture(t)
	before := len(f.audit("admin", ""))
	for range 50 {
		if code, body, _ := f.do("", "POST", "/v1/tenants", `{"name":"x"}`); code != 401 {
			t.Fatalf("anonymous POST: %d %s", code, body)
		}
		f.do("wharf_forged", "DELETE", "/v1/tenants/acme", nil)
		f.do("", "POST", "/v1/bootstrap", nil) // 409, and public
	}
	after := f.audit("admin", "")
	if n := len(after) - before; n > 5 {
		t.Fatalf("150 anonymous refusals wrote %d audit entries, want at most the burst of 5", n)
	} else if n == 0 {
		t.Fatal("no anonymous refusal was recorded at all")
	}
	// Authenticated refusals are never dropped.
	for range 20 {
		f.do("acme/viewer", "POST", "/v1/apps", `{"name":"x","image":"i"}`)
	}
	if n := len(f.audit("admin", "")) - len(after); n != 20 {
		t.Fatalf("20 refused requests with a valid token wrote %d entries, want 20", n)
	}
}

// failingAuditor fails every record once fail is set.
type failingAuditor struct{ fail atomic.Bool }

func (a *failingAuditor) Record(context.Context, apitypes.AuditEntry) error {
	if a.fail.Load() {
		return errors.New("no quorum")
	}
	return nil
}

// Fold never folds: every entry goes through Record.
func (a *failingAuditor) Fold(int, []byte, apitypes.AuditEntry) ([]byte, bool) { return nil, false }
func (a *failingAuditor) Folded()                                              {}

func TestAuditFailureWithholdsSuccess(t *testing.T) {
	fa := &failingAuditor{}
	f := newFixture(t, func(c *Config) { c.Audit = fa })
	fa.fail.Store(true)
	code, body, hdr := f.do("admin", "POST", "/v1/tenants", apitypes.TenantRequest{Name: "delta"})
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "audit") || hdr.Get("X-Wharf-Index") != "" {
		t.Fatalf("a write whose audit entry failed: %d %s (index %q), want 503 saying why", code, body, hdr.Get("X-Wharf-Index"))
	}
	// A refusal changed nothing: it is answered as it is.
	if code, body, _ := f.do("acme/viewer", "POST", "/v1/apps", `{"name":"x","image":"i"}`); code != 403 {
		t.Fatalf("a refusal whose audit entry failed: %d %s, want its 403", code, body)
	}
	// Reads are not audited.
	if code, _, _ := f.do("admin", "GET", "/v1/tenants", nil); code != 200 {
		t.Fatalf("a read: %d", code)
	}
}

// TestAuditStreamingAnswer: a mutating handler that streams (flushes)
// has its entry committed at the first flush, then streams through.
func TestAuditStreamingAnswer(t *testing.T) {
	f := auditedFixture(t)
	recorded := make(chan int, 1)
	f.api.handle("POST /v1/apps/{name}/stream-test", authed, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("first "))
		w.(http.Flusher).Flush()
		es, err := f.api.cfg.Store.Snapshot().AuditLog(nil)
		if err != nil {
			return err
		}
		n := 0
		for _, e := range es {
			if e.Path == r.URL.Path {
				n++
			}
		}
		recorded <- n
		w.Write([]byte("second"))
		return nil
	})
	code, body, _ := f.do("acme/developer", "POST", "/v1/apps/web/stream-test", nil)
	if code != 200 || string(body) != "first second" {
		t.Fatalf("streamed answer: %d %q", code, body)
	}
	if n := <-recorded; n != 1 {
		t.Fatalf("at the first flush the log held %d entries of the request, want 1", n)
	}
	n := 0
	for _, e := range f.audit("admin", "") {
		if e.Path == "/v1/apps/web/stream-test" {
			n++
			if e.Status != 200 || e.Object != "web" || e.Actor != "developer" {
				t.Fatalf("entry %+v", e)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d entries for the streamed request, want 1", n)
	}
}

// TestAuditFoldedWithTheWrite: an app write commits its audit entry in
// its own Raft entry (one commit, not two) when the cluster reads such
// entries, and in a second commit when it does not; a write the store
// refuses records its refusal once; every request has exactly one entry.
func TestAuditFoldedWithTheWrite(t *testing.T) {
	f := auditedFixture(t)
	applies := func() int {
		f.cluster.mu.Lock()
		defer f.cluster.mu.Unlock()
		return f.cluster.applies
	}
	for _, c := range []struct {
		name, who, method, path string
		body                    any
		format                  int
		status, commits         int
		tenant                  string
	}{
		{"create", "acme/developer", "PUT", "/v1/apps/fold", `{"image":"web:1"}`, 0, 201, 1, "acme"},
		{"update", "acme/developer", "PUT", "/v1/apps/fold", `{"image":"web:2"}`, 0, 200, 1, "acme"},
		{"scale", "acme/developer", "POST", "/v1/apps/fold/scale", `{"instances":3}`, 0, 200, 1, "acme"},
		{"an admin's update", "admin", "PUT", "/v1/apps/fold?tenant=acme", `{"image":"web:3"}`, 0, 200, 1, "acme"},
		{"a stale CAS", "acme/developer", "PUT", "/v1/apps/fold?cas=1", `{"image":"web:4"}`, 0, 409, 2, "acme"},
		{"a voter that cannot read it", "acme/developer", "PUT", "/v1/apps/fold", `{"image":"web:5"}`, state.FormatBinary, 200, 2, "acme"},
		{"delete", "acme/developer", "DELETE", "/v1/apps/fold", nil, 0, 204, 1, "acme"},
	} {
		f.cluster.mu.Lock()
		f.cluster.format = c.format
		f.cluster.mu.Unlock()
		before, n := f.audit("admin", ""), applies()
		code, body, _ := f.do(c.who, c.method, c.path, c.body)
		if code != c.status {
			t.Fatalf("%s: %d %s, want %d", c.name, code, body, c.status)
		}
		if got := applies() - n; got != c.commits {
			t.Errorf("%s: %d commits, want %d", c.name, got, c.commits)
		}
		after := f.audit("admin", "")
		if len(after) != len(before)+1 {
			t.Fatalf("%s: %d new audit entries, want 1", c.name, len(after)-len(before))
		}
		e := after[len(after)-1]
		path, _, _ := strings.Cut(c.path, "?")
		if e.Method != c.method || e.Path != path || e.Status != c.status || e.Object != "fold" || e.Tenant != c.tenant || e.Actor == "" {
			t.Fatalf("%s: entry %+v", c.name, e)
		}
	}
}
