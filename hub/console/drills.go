package console

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Drills from the browser: /ui/drills lists them and (admins) starts one
// through a form; /ui/drills/{id} shows its timeline, which the page's
// script reloads from /ui/drills/{id}/timeline until the drill ends, and
// an admin's button that ends it. The API decides who may do what: drills
// are an admin's.

// drillPages are the console's drill templates, parsed like the pages of
// render.go. They are built into the binary, so a parse error is a bug
// that every test run shows.
func drillPages() map[string]*template.Template {
	return map[string]*template.Template{
		"drill": template.Must(template.New("drill").Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/fragments.html", "templates/drill.html")),
	}
}

// drillForm is the run-a-drill form as typed, and what is wrong with it.
type drillForm struct {
	Target, Mode string
	Errors       map[string]string
}

type drillsData struct {
	Drills             []apitypes.Drill
	Pools, Datacenters []string
	Form               drillForm
}

func (c *Console) drills(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderDrills(w, r, s, http.StatusOK, drillForm{Mode: "cutoff"}, "")
}

func (c *Console) renderDrills(w http.ResponseWriter, r *http.Request, s *session, code int, form drillForm, msg string) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	cl := c.client(s)
	ds, _, err := cl.Drills().List(ctx, nil)
	// Newest first.
	slices.SortFunc(ds, func(a, b apitypes.Drill) int { return b.StartedAt.Compare(a.StartedAt) })
	d := drillsData{Drills: ds, Form: form}
	if s.Admin() {
		if ps, _, err := cl.Pools().List(ctx, nil); err == nil {
			for _, p := range ps {
				d.Pools = append(d.Pools, p.Name)
				if p.Datacenter != "" && !slices.Contains(d.Datacenters, p.Datacenter) {
					d.Datacenters = append(d.Datacenters, p.Datacenter)
				}
			}
			slices.Sort(d.Pools)
			slices.Sort(d.Datacenters)
		}
	}
	v := c.view(s, "drills", "Drills", d)
	v.Error = msg
	if err != nil && msg == "" {
		v.Error, code = errText(err), statusOf(err)
	}
	c.render(w, code, "drills", v)
}

// request reads the form: the target is "pool:NAME" or "datacenter:NAME".
func (f drillForm) request() (apitypes.DrillRequest, map[string]string) {
	errs := map[string]string{}
	var req apitypes.DrillRequest
	kind, name, ok := strings.Cut(f.Target, ":")
	switch {
	case !ok || name == "":
		errs["target"] = "choose the pool or datacenter to drill"
	case kind == "pool":
		req.Pool = name
	case kind == "datacenter":
		req.Datacenter = name
	default:
		errs["target"] = "the target is a pool or a datacenter"
	}
	if f.Mode != "cutoff" && f.Mode != "evacuate" {
		errs["mode"] = "the mode is cutoff or evacuate"
	}
	req.Mode = f.Mode
	return req, errs
}

// runDrill starts a drill from the form and shows its page.
func (c *Console) runDrill(w http.ResponseWriter, r *http.Request, s *session) {
	f := drillForm{Target: strings.TrimSpace(r.PostForm.Get("target")), Mode: strings.TrimSpace(r.PostForm.Get("mode"))}
	req, errs := f.request()
	if len(errs) > 0 {
		f.Errors = errs
		c.renderDrills(w, r, s, http.StatusUnprocessableEntity, f, "The drill was not started: see the fields below.")
		return
	}
	ctx, cancel := apiCtx(r)
	defer cancel()
	d, err := c.client(s).Drills().Run(ctx, req)
	if err != nil {
		c.renderDrills(w, r, s, statusOf(err), f, "The drill was not started: "+errText(err))
		return
	}
	c.log.Info("console: drill started", "drill", d.ID, "pool", req.Pool, "datacenter", req.Datacenter, "mode", req.Mode, "session_user", s.Name)
	http.Redirect(w, r, drillURL(d.ID), http.StatusSeeOther)
}

func drillURL(id string) string { return "/ui/drills/" + url.PathEscape(id) }

// drillStep is one milestone of a drill's timeline.
type drillStep struct {
	Key, Label string
	Ms         int64 // from the start
	Reached    bool
}

// drillView is what the drill page and its timeline show.
type drillView struct {
	apitypes.Drill
	Steps []drillStep
	// Done: the report is complete (the replacements are routed) or the
	// drill was ended.
	Done bool
	Apps []string // "tenant/app: N instances"
}

func newDrillView(d apitypes.Drill) drillView {
	v := drillView{Drill: d}
	step := func(key, label string, ms int64) {
		v.Steps = append(v.Steps, drillStep{Key: key, Label: label, Ms: ms, Reached: ms >= 0})
	}
	step("started", "Started", 0)
	if d.Mode == "cutoff" {
		step("detected", "Loss detected (the target's hosts missed)", d.DetectedMs)
	}
	step("scheduled", "Replacements scheduled", d.ScheduledMs)
	step("ready", "Replacements ready", d.ReadyMs)
	step("routed", "Routers send to the replacements", d.RoutedMs)
	if d.EndedAt != nil {
		step("ended", "Ended", d.EndedAt.Sub(d.StartedAt).Milliseconds())
	}
	v.Done = d.RoutedMs >= 0 || d.State != "running"
	for app, n := range d.Apps {
		v.Apps = append(v.Apps, app+": "+strconv.Itoa(n)+" instances")
	}
	slices.Sort(v.Apps)
	return v
}

// loadDrill reads one drill, or answers the API's refusal.
func (c *Console) loadDrill(r *http.Request, s *session) (*apitypes.Drill, error) {
	ctx, cancel := apiCtx(r)
	defer cancel()
	d, _, err := c.client(s).Drills().Get(ctx, r.PathValue("id"), nil)
	return d, err
}

func (c *Console) drill(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadDrill(r, s)
	if err != nil {
		v := c.view(s, "drills", "Drill", nil)
		v.Error = errText(err)
		c.render(w, statusOf(err), "drill", v)
		return
	}
	c.render(w, http.StatusOK, "drill", c.view(s, "drills", "Drill "+d.ID, newDrillView(*d)))
}

// drillTimeline is the drill page's timeline alone, which its script
// reloads.
func (c *Console) drillTimeline(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.loadDrill(r, s)
	if err != nil {
		http.Error(w, errText(err), statusOf(err))
		return
	}
	var b bytes.Buffer
	if err := c.pages["drill"].ExecuteTemplate(&b, "drill-timeline", newDrillView(*d)); err != nil {
		c.log.Error("console: rendering a drill's timeline", "err", err)
		http.Error(w, "the timeline could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// endDrill ends a drill and shows its page again.
func (c *Console) endDrill(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	ctx, cancel := apiCtx(r)
	defer cancel()
	if _, err := c.client(s).Drills().End(ctx, id); err != nil {
		v := c.view(s, "drills", "Drill "+id, nil)
		v.Error = "The drill was not ended: " + errText(err)
		if d, err := c.loadDrill(r, s); err == nil {
			v.Data = newDrillView(*d)
		}
		c.render(w, statusOf(err), "drill", v)
		return
	}
	c.log.Info("console: drill ended", "drill", id, "session_user", s.Name)
	http.Redirect(w, r, drillURL(id), http.StatusSeeOther)
}
