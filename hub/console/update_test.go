package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/pkg/client"
)

// TestUpdateFormDeploysANewVersion: the app page's update form makes a new
// version with the new image and the rest of the spec kept; without the
// CSRF field it is 403 and changes nothing; a viewer gets no form and its
// forged update is the API's 403.
func TestUpdateFormDeploysANewVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	q := &client.QueryOptions{Tenant: "alpha"}
	get := func() (string, int, int) {
		t.Helper()
		a, _, err := e.api.Apps().Get(ctx, "web-alpha", q)
		if err != nil {
			t.Fatal(err)
		}
		return a.Image, a.Version, *a.Instances
	}
	_, v0, n0 := get()

	admin := newBrowser(t, e.url)
	token := admin.login(e.admin)
	_, page := admin.get("/ui/apps/alpha/web-alpha")
	if !strings.Contains(page, `id="update"`) {
		t.Fatalf("the admin's app page has no update form:\n%s", page)
	}
	if resp, _ := admin.post("/ui/apps/alpha/web-alpha/update", url.Values{"image": {"web:9"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an update without CSRF answered %d, want 403", resp.StatusCode)
	}
	if img, v, _ := get(); img != "web:1" || v != v0 {
		t.Fatalf("a refused update changed the app: %s v%d", img, v)
	}
	if resp, body := admin.post("/ui/apps/alpha/web-alpha/update", url.Values{"csrf": {token}, "image": {" "}}); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "give the new image") {
		t.Fatalf("an empty image answered %d", resp.StatusCode)
	}
	resp, _ := admin.post("/ui/apps/alpha/web-alpha/update", url.Values{"csrf": {token}, "image": {"web:2"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/apps/alpha/web-alpha" {
		t.Fatalf("the update answered %d (Location %q)", resp.StatusCode, resp.Header.Get("Location"))
	}
	if img, v, n := get(); img != "web:2" || v != v0+1 || n != n0 {
		t.Fatalf("after the update: %s v%d %d instances; want web:2 v%d %d instances", img, v, n, v0+1, n0)
	}

	viewer := newBrowser(t, e.url)
	vtoken := viewer.login(e.viewer)
	if _, page := viewer.get("/ui/apps/alpha/web-alpha"); strings.Contains(page, `id="update"`) {
		t.Error("a viewer sees the update form")
	}
	if resp, _ := viewer.post("/ui/apps/alpha/web-alpha/update", url.Values{"csrf": {vtoken}, "image": {"web:3"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's update answered %d, want 403", resp.StatusCode)
	}
	if img, _, _ := get(); img != "web:2" {
		t.Fatalf("a viewer's update changed the image to %s", img)
	}
}
