package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/pki"
)

// enrolHost writes a host of pool into the state as an agent's enrolment
// would, so that the pool has something to drill.
func enrolHost(t *testing.T, e *env, pool string) {
	t.Helper()
	ctx := context.Background()
	var jt *apitypes.JoinToken
	hubtest.WaitFor(t, 10*time.Second, "a join token (the agent CA exists)", func() bool {
		var err error
		jt, err = e.api.JoinTokens().Create(ctx, apitypes.JoinTokenRequest{Pool: pool})
		return err == nil
	})
	parsed, err := pki.ParseJoinToken(jt.Token)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := state.Encode(state.HostEnrollType, &state.HostEnrollRequest{TokenID: jt.ID, SecretHash: pki.HashSecret(parsed.Secret),
		Host: state.Host{ID: "host-" + pool, Name: pool + "-1"}, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.hubs.Leader().Hub().Cluster().Apply(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// The drill form starts a drill through the API; its page shows the
// timeline, which its fragment serves for the script to reload; the end
// button ends it. Refused forms change nothing.
func TestDrillFormPageAndEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.api.Pools().Create(ctx, apitypes.PoolRequest{Name: "p1", Datacenter: "dc1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Pools().Create(ctx, apitypes.PoolRequest{Name: "empty", Datacenter: "dc9"}); err != nil {
		t.Fatal(err)
	}
	enrolHost(t, e, "p1")
	b := newBrowser(t, e.url)
	token := b.login(e.admin)
	drills := func() []apitypes.Drill {
		t.Helper()
		ds, _, err := e.api.Drills().List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	resp, page := b.get("/ui/drills")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="drill-run"`) ||
		!strings.Contains(page, `value="datacenter:dc1"`) || !strings.Contains(page, `value="pool:p1"`) {
		t.Fatalf("the drills page (%d) has no run form offering dc1 and p1:\n%s", resp.StatusCode, page)
	}

	// Refused: no CSRF field, a bad target, a bad mode, a target the API
	// refuses.
	for _, tc := range []struct {
		form url.Values
		code int
		says string
	}{
		{url.Values{"target": {"datacenter:dc1"}, "mode": {"cutoff"}}, http.StatusForbidden, "CSRF"},
		{url.Values{"csrf": {token}, "target": {""}, "mode": {"cutoff"}}, http.StatusUnprocessableEntity, "choose the pool or datacenter"},
		{url.Values{"csrf": {token}, "target": {"host:h1"}, "mode": {"cutoff"}}, http.StatusUnprocessableEntity, "a pool or a datacenter"},
		{url.Values{"csrf": {token}, "target": {"pool:p1"}, "mode": {"explode"}}, http.StatusUnprocessableEntity, "cutoff or evacuate"},
		{url.Values{"csrf": {token}, "target": {"pool:empty"}, "mode": {"cutoff"}}, http.StatusUnprocessableEntity, "has no host"},
	} {
		resp, body := b.post("/ui/drills", tc.form)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("POST /ui/drills %v answered %d, want %d saying %q:\n%s", tc.form, resp.StatusCode, tc.code, tc.says, body)
		}
	}
	if ds := drills(); len(ds) != 0 {
		t.Fatalf("refused forms started drills: %+v", ds)
	}

	// A viewer sees no form, and a forged one is the API's to refuse.
	v := newBrowser(t, e.url)
	vtoken := v.login(e.viewer)
	if _, page := v.get("/ui/drills"); strings.Contains(page, `id="drill-run"`) {
		t.Fatal("the viewer's drills page has the run form")
	}
	if resp, _ := v.post("/ui/drills", url.Values{"csrf": {vtoken}, "target": {"pool:p1"}, "mode": {"cutoff"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the viewer's drill answered %d, want 403", resp.StatusCode)
	}
	if ds := drills(); len(ds) != 0 {
		t.Fatalf("the viewer started a drill: %+v", ds)
	}

	// The admin runs one: to its page.
	resp, body := b.post("/ui/drills", url.Values{"csrf": {token}, "target": {"datacenter:dc1"}, "mode": {"cutoff"}})
	ds := drills()
	if resp.StatusCode != http.StatusSeeOther || len(ds) != 1 || ds[0].Datacenter != "dc1" || ds[0].Mode != "cutoff" {
		t.Fatalf("the drill form answered %d (%s), drills %+v:\n%s", resp.StatusCode, resp.Header.Get("Location"), ds, body)
	}
	id := ds[0].ID
	if loc := resp.Header.Get("Location"); loc != "/ui/drills/"+id {
		t.Fatalf("after the form the browser goes to %s", loc)
	}
	resp, page = b.get("/ui/drills/" + id)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-refresh="/ui/drills/`+id+`/timeline"`) ||
		!strings.Contains(page, `data-step="started" data-reached="true"`) || !strings.Contains(page, `id="drill-end"`) {
		t.Fatalf("the drill page (%d):\n%s", resp.StatusCode, page)
	}
	resp, frag := b.get("/ui/drills/" + id + "/timeline")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(frag, `<div id="drill-timeline" data-state="running"`) || strings.Contains(frag, "<html") {
		t.Fatalf("the timeline fragment (%d):\n%s", resp.StatusCode, frag)
	}
	if resp, _ := newBrowser(t, e.url).get("/ui/drills/" + id + "/timeline"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed out, the timeline answered %d, want 401", resp.StatusCode)
	}
	if resp, _ := b.get("/ui/drills/d-nope"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a missing drill's page answered %d, want 404", resp.StatusCode)
	}

	// Ending it needs the CSRF field too; then the timeline is complete.
	if resp, _ := b.post("/ui/drills/"+id+"/end", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an end without CSRF answered %d", resp.StatusCode)
	}
	if ds := drills(); ds[0].State != "running" {
		t.Fatalf("a refused end ended the drill: %+v", ds[0])
	}
	if resp, body := b.post("/ui/drills/"+id+"/end", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("end answered %d:\n%s", resp.StatusCode, body)
	}
	if ds := drills(); ds[0].State != "ended" {
		t.Fatalf("after end: %+v", ds[0])
	}
	_, frag = b.get("/ui/drills/" + id + "/timeline")
	for _, want := range []string{`data-state="ended" data-done="true"`, `data-step="ended" data-reached="true"`, `id="drill-report"`} {
		if !strings.Contains(frag, want) {
			t.Fatalf("the ended drill's timeline lacks %s:\n%s", want, frag)
		}
	}
	if _, page := b.get("/ui/drills/" + id); strings.Contains(page, `id="drill-end"`) {
		t.Fatal("an ended drill still offers the end button")
	}
	if _, page := b.get("/ui/drills"); !regexp.MustCompile(`<a href="/ui/drills/` + id + `">`).MatchString(page) {
		t.Fatalf("the drills list does not link the drill:\n%s", page)
	}
}

// The app page's charts offer ranges; an unknown one is refused with a
// clear message.
func TestAppPageChartRanges(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.url)
	b.login(e.admin)
	resp, page := b.get("/ui/apps/alpha/web-alpha?range=6h")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Metrics (last 6 hours)") ||
		!regexp.MustCompile(`range=6h" class="on"`).MatchString(page) {
		t.Fatalf("the app page at 6h (%d):\n%s", resp.StatusCode, page)
	}
	for _, k := range []string{"15m", "1h", "6h", "24h"} {
		if !strings.Contains(page, `data-range="`+k+`"`) {
			t.Errorf("no link to the %s range", k)
		}
	}
	resp, page = b.get("/ui/apps/alpha/web-alpha?range=2d")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "unknown range") {
		t.Fatalf("an unknown range answered %d:\n%s", resp.StatusCode, page)
	}
	// The log filters are the page's query: without a script the form
	// reloads the page with them, and the stream's URL carries them.
	_, page = b.get("/ui/apps/alpha/web-alpha?grep=needle&instance=web-alpha-1")
	if !strings.Contains(page, `data-stream="/ui/apps/alpha/web-alpha/logs/stream?grep=needle&amp;instance=web-alpha-1"`) ||
		!strings.Contains(page, `id="log-grep" name="grep" value="needle"`) {
		t.Fatalf("the filtered app page:\n%s", page)
	}
}
