package console

import (
	"net/http"
	"strings"

	"github.com/wharf-platform/wharf/pkg/client"
)

// update deploys a new version of an app with another image: the app's
// current spec with the image replaced, rolled out with the app's own
// strategy, exactly as `wharf app update --image` does.
func (c *Console) update(w http.ResponseWriter, r *http.Request, s *session) {
	tenant, name := r.PathValue("tenant"), r.PathValue("app")
	image := strings.TrimSpace(r.PostForm.Get("image"))
	if image == "" {
		c.renderApp(w, r, s, http.StatusUnprocessableEntity, "Not updated: give the new image.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	app, _, err := cl.Apps().Get(ctx, name, &client.QueryOptions{Tenant: tenant})
	if err != nil {
		c.renderApp(w, r, s, statusOf(err), "Not updated: "+errText(err))
		return
	}
	if app.Image == "" {
		c.renderApp(w, r, s, http.StatusUnprocessableEntity, "Not updated: the app runs a command, not an image.")
		return
	}
	spec := app.AppSpec
	spec.Image = image
	if _, _, _, err := cl.Apps().Put(ctx, spec, &client.WriteOptions{Tenant: tenant}); err != nil {
		c.renderApp(w, r, s, statusOf(err), "Not updated: "+errText(err))
		return
	}
	c.log.Info("console: app updated", "tenant", tenant, "app", name, "image", image, "session_user", s.Name)
	http.Redirect(w, r, appURL(tenant, name), http.StatusSeeOther)
}
