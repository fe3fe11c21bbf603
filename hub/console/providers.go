package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// providersData is the admin's page of provider accounts and the
// machines they run.
type providersData struct {
	Providers []apitypes.Provider
	Machines  []apitypes.Machine
	Types     []string
	Form      form
}

// providerFields are the add form's fields. The credentials are never
// shown back: a refused form comes back with that field empty.
var providerFields = []string{"name", "type", "region", "endpoint", "insecure", "credentials"}

func (c *Console) providers(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderProviders(w, r, s, http.StatusOK, blank(map[string]string{"type": "aws"}), "")
}

func (c *Console) renderProviders(w http.ResponseWriter, r *http.Request, s *session, code int, f form, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	f.V["credentials"] = ""
	d := providersData{Types: apitypes.ProviderTypes, Form: f}
	var err error
	d.Providers, _, err = cl.Providers().List(ctx, nil)
	slices.SortFunc(d.Providers, func(a, b apitypes.Provider) int { return strings.Compare(a.Name, b.Name) })
	if err == nil {
		d.Machines, _, err = cl.Machines().List(ctx, "", nil)
		slices.SortFunc(d.Machines, func(a, b apitypes.Machine) int { return strings.Compare(a.Pool+a.ID, b.Pool+b.ID) })
	}
	v := c.view(s, "providers", "Providers", d)
	v.Error = msg
	if err != nil && msg == "" {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "providers", v)
}

func (c *Console) addProvider(w http.ResponseWriter, r *http.Request, s *session) {
	f := readForm(r, providerFields...)
	req := apitypes.ProviderRequest{Name: f.V["name"], Type: f.V["type"], Region: f.V["region"], Endpoint: f.V["endpoint"],
		Insecure: f.V["insecure"] != "", Credentials: f.jsonObject("credentials")}
	if req.Credentials == nil && !f.failed() {
		f.Errors["credentials"] = "credentials are required"
	}
	if f.failed() {
		c.renderProviders(w, r, s, http.StatusUnprocessableEntity, f, "The provider was not added: see the fields below.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	if _, err := c.client(s).Providers().Create(ctx, req); err != nil {
		f.apiError(err, nil)
		c.renderProviders(w, r, s, statusOf(err), f, "The provider was not added: "+errText(err))
		return
	}
	c.log.Info("console: provider added", "provider", req.Name, "type", req.Type, "session_user", s.Name)
	redirect(w, r, "/ui/providers")
}

func (c *Console) removeProvider(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	name := r.PathValue("name")
	if err := c.client(s).Providers().Delete(ctx, name); err != nil {
		c.renderProviders(w, r, s, statusOf(err), blank(nil), "Not removed: "+errText(err))
		return
	}
	c.log.Info("console: provider removed", "provider", name, "session_user", s.Name)
	redirect(w, r, "/ui/providers")
}

// escape is a path segment of a form's action.
func escape(s string) string { return url.PathEscape(s) }
