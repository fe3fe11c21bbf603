package console_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

func TestDeployFormResourcesPoolsStrategyAndHealth(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.url)
	token := b.login(e.admin)
	ctx := context.Background()
	for _, p := range []string{"eu-1", "eu-2"} {
		if _, err := e.api.Pools().Create(ctx, apitypes.PoolRequest{Name: p, Datacenter: "dc1"}); err != nil {
			t.Fatal(err)
		}
	}
	_, page := b.get("/ui/apps")
	for _, id := range []string{"cpu", "memory", "pools", "strategy", "max_surge", "max_unavailable", "health"} {
		if !strings.Contains(page, `id="`+id+`" name="`+id+`"`) {
			t.Fatalf("the deploy form has no %s field:\n%s", id, page)
		}
	}
	base := func(extra url.Values) url.Values {
		v := url.Values{"csrf": {token}, "tenant": {"alpha"}, "name": {"shop"}, "image": {"shop:1"}, "instances": {"2"}, "ports": {"http:8080"}}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	for _, tc := range []struct {
		name  string
		form  url.Values
		code  int
		field string
	}{
		{"cpu not a number", base(url.Values{"cpu": {"lots"}}), http.StatusUnprocessableEntity, "cpu"},
		{"negative max surge", base(url.Values{"strategy": {"rolling"}, "max_surge": {"-1"}}), http.StatusUnprocessableEntity, "max_surge"},
		{"the API refuses the memory", base(url.Values{"memory": {"99999999"}}), http.StatusBadRequest, "memory"},
		{"the API refuses the strategy", base(url.Values{"strategy": {"sideways"}}), http.StatusBadRequest, "strategy"},
		{"the API refuses an unknown pool", base(url.Values{"pools": {"eu-1, nowhere"}}), http.StatusUnprocessableEntity, "pools"},
		{"the API refuses the health path", base(url.Values{"health": {"healthz"}}), http.StatusBadRequest, "health"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.post("/ui/apps", tc.form)
			if resp.StatusCode != tc.code {
				t.Fatalf("answered %d, want %d:\n%s", resp.StatusCode, tc.code, body)
			}
			if !strings.Contains(body, `data-field="`+tc.field+`"`) {
				t.Fatalf("no error next to field %s:\n%s", tc.field, body)
			}
			for k := range tc.form {
				if k != "csrf" && k != "tenant" && k != "strategy" && !strings.Contains(body, `value="`+tc.form.Get(k)+`"`) {
					t.Fatalf("the form lost the typed %s:\n%s", k, body)
				}
			}
		})
	}
	if _, _, err := e.api.Apps().Get(ctx, "shop", &client.QueryOptions{Tenant: "alpha"}); err == nil {
		t.Fatal("a refused deploy created the app")
	}

	resp, body := b.post("/ui/apps", base(url.Values{"cpu": {"250"}, "memory": {"512"}, "pools": {"eu-1, eu-2"},
		"strategy": {"rolling"}, "max_surge": {"2"}, "max_unavailable": {"1"}, "health": {"/healthz"}}))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/apps/alpha/shop" {
		t.Fatalf("deploy answered %d (Location %q):\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	app, _, err := e.api.Apps().Get(ctx, "shop", &client.QueryOptions{Tenant: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	if app.CPU != 250 || app.Memory != 512 || !slices.Equal(app.Pools, []string{"eu-1", "eu-2"}) {
		t.Fatalf("deployed cpu %d, memory %d, pools %q; want 250, 512, [eu-1 eu-2]", app.CPU, app.Memory, app.Pools)
	}
	if st := app.Strategy; st == nil || st.Type != "rolling" || st.MaxSurge != 2 || st.MaxUnavailable != 1 {
		t.Fatalf("deployed strategy %+v; want rolling, surge 2, unavailable 1", st)
	}
	if h := app.Health; h == nil || h.HTTP != "/healthz" {
		t.Fatalf("deployed health %+v; want HTTP /healthz", h)
	}
}
