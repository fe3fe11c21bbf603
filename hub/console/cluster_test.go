package console_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestClusterPageListsPeersAndLeader(t *testing.T) {
	c := hubtest.New(t, 3, hubtest.Options{})
	c.WaitLeader(30 * time.Second)
	u := c.Nodes[0].URL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, b := bootstrap(t, ctx, u)
	if _, err := api.Tenants().Create(ctx, apitypes.TenantRequest{Name: "alpha"}); err != nil {
		t.Fatal(err)
	}
	v, err := api.Tokens().Create(ctx, apitypes.TokenRequest{Name: "watcher", Role: apitypes.RoleViewer, Tenant: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	var st *apitypes.Status
	hubtest.WaitUntil(t, 30*time.Second, "node 0 sees 3 peers and the leader", func() error {
		var err error
		if st, err = api.Status(ctx); err == nil && (len(st.Peers) != 3 || st.Leader == "") {
			err = fmt.Errorf("%d peers, leader %q", len(st.Peers), st.Leader)
		}
		return err
	})

	// Signed out: the page sends to the login form, the fragment says 401.
	out := newBrowser(t, u)
	if resp, _ := out.get("/ui/cluster"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signed-out cluster page answered %d", resp.StatusCode)
	}
	if resp, _ := out.get("/ui/cluster/table"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed-out cluster table answered %d", resp.StatusCode)
	}

	for who, token := range map[string]string{"admin": b.Token, "viewer": v.Secret} {
		br := newBrowser(t, u)
		br.login(token)
		for _, path := range []string{"/ui/cluster", "/ui/cluster/table"} {
			resp, page := br.get(path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s answered %d:\n%s", who, path, resp.StatusCode, page)
			}
			if n := strings.Count(page, `<tr class="peer"`); n != 3 {
				t.Fatalf("%s: %s lists %d peers, want 3:\n%s", who, path, n, page)
			}
			for _, p := range st.Peers {
				if !strings.Contains(page, `data-id="`+p.ID+`"`) || !strings.Contains(page, p.Address) {
					t.Fatalf("%s: %s does not list peer %+v:\n%s", who, path, p, page)
				}
			}
			if n := strings.Count(page, `data-leader="true"`); n != 1 {
				t.Fatalf("%s: %s marks %d peers as leader, want 1:\n%s", who, path, n, page)
			}
			if !strings.Contains(page, `<dd id="cluster-leader">`+st.Leader+`</dd>`) || !strings.Contains(page, `<dd id="cluster-node">`+st.Node+`</dd>`) {
				t.Fatalf("%s: %s does not name the leader %q and node %q:\n%s", who, path, st.Leader, st.Node, page)
			}
			if path == "/ui/cluster" {
				if !strings.Contains(page, `data-refresh="/ui/cluster/table"`) || !strings.Contains(page, `href="/ui/cluster" class="on"`) {
					t.Fatalf("%s: the cluster page neither refreshes its table nor marks its nav link:\n%s", who, page)
				}
			}
		}
	}
}
