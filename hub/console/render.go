package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// pageNames are the templates/<name>.html files, each rendered inside
// layout.html.
var pageNames = []string{"login", "overview", "apps", "app", "hosts", "pools", "events", "drills", "billing"}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"mib":    func(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) },
	"join":   strings.Join,
	"appURL": appURL,
	"deref": func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	},
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a whole page. It renders into a buffer first so that a
// template error becomes a 500, not half a page.
func (c *Console) render(w http.ResponseWriter, code int, page string, v *view) {
	var b bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&b, "layout", v); err != nil {
		c.log.Error("console: rendering a page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// renderFragment writes one table (a template of fragments.html) alone.
func (c *Console) renderFragment(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := c.pages["app"].ExecuteTemplate(&b, name, data); err != nil {
		c.log.Error("console: rendering a fragment", "fragment", name, "err", err)
		http.Error(w, "the table could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}
