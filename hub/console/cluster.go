package console

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// observePages are the templates/<name>.html files of the cluster page,
// each rendered inside layout.html.
var observePages = []string{"cluster"}

// registerObserve adds the cluster page (the hub's Raft peers, refreshed
// live) and the app page's alert rules and log drains.
func (c *Console) registerObserve(mux *http.ServeMux) {
	for _, name := range observePages {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html", "templates/"+name+".html")
		if err != nil {
			panic(fmt.Sprintf("console template %s: %v", name, err)) // embedded: a build mistake, caught by every test
		}
		c.pages[name] = t
	}
	mux.HandleFunc("GET /ui/cluster", c.get(c.cluster))
	mux.HandleFunc("GET /ui/cluster/table", c.get(c.clusterFragment))

	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/alerts", c.post(c.addAlert))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/alerts/{id}/remove", c.post(c.removeAlert))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/drains", c.post(c.addDrain))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/drains/{id}/remove", c.post(c.removeDrain))
}

// clusterData is the answering node's view of the hub cluster.
type clusterData struct {
	Status  *apitypes.Status
	Refresh int64
}

// loadCluster reads GET /v1/status (it needs no token; the session's is
// sent all the same), peers sorted by name.
func (c *Console) loadCluster(r *http.Request, s *session) (clusterData, error) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	d := clusterData{Refresh: c.cfg.Refresh.Milliseconds()}
	st, err := c.client(s).Status(ctx)
	if err != nil {
		return d, err
	}
	slices.SortFunc(st.Peers, func(a, b apitypes.Peer) int {
		return strings.Compare(a.Name+"\x00"+a.ID, b.Name+"\x00"+b.ID)
	})
	d.Status = st
	return d, nil
}

func (c *Console) cluster(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadCluster(r, s)
	c.list(w, s, "cluster", "Cluster", d, err)
}

func (c *Console) clusterFragment(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadCluster(r, s)
	if err != nil {
		http.Error(w, errText(err), statusOf(err))
		return
	}
	c.renderPart(w, "cluster", "clustertable", d)
}
