// Package console is the hub's web console: server-rendered HTML pages
// under /ui/ that work without JavaScript (a small same-origin script only
// refreshes live tables), built into the binary with embed.
//
// The console has no permission model of its own. Signing in with an API
// token checks it against the API (GET /v1/tokens/self); every page and
// action then calls the node's own API handler through the Go client with
// that token, so a role may do in the console exactly what it may do
// through the API. The token stays on the server: the browser's cookie
// (wharf_session, HttpOnly, SameSite=Strict) holds a random session id.
//
// Sessions live in this node's memory: a session is valid only on the hub
// node that issued it and ends when the node restarts, after 12 hours
// without a request, or at logout (POST /ui/logout). Every form carries
// the session's CSRF token and every POST without the right one is
// refused with 403.
package console

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/pkg/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SessionCookie is the name of the cookie that holds the session id.
const SessionCookie = "wharf_session"

// loginCookie holds the CSRF token of the login form (before there is a
// session to keep it in).
const loginCookie = "wharf_login"

// DefaultIdle is how long a session lasts without a request.
const DefaultIdle = 12 * time.Hour

// Config configures the console.
type Config struct {
	// API is the node's API handler; the console calls it in process.
	API http.Handler
	// Logger: nil discards.
	Logger *slog.Logger
	// Idle ends a session after this long without a request. Zero means
	// DefaultIdle.
	Idle time.Duration
	// Now: nil means time.Now.
	Now func() time.Time
	// Refresh is how often the live tables reload. Zero means 2 s.
	Refresh time.Duration
}

// Console serves the web console.
type Console struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	hc       *http.Client
	pages    map[string]*template.Template
	mux      *http.ServeMux
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil {
		return nil, fmt.Errorf("console: no API handler")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Idle == 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 2 * time.Second
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: newSessions(cfg.Idle, cfg.Now),
		hc:       &http.Client{Transport: handlerTransport{h: cfg.API}},
		pages:    pages,
	}
	c.mux = c.routes()
	return c, nil
}

// Handler serves GET / (a redirect to /ui/) and everything under /ui/.
func (c *Console) Handler() http.Handler { return c }

// ServeHTTP sets the security headers of every answer and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	mux.Handle("GET /ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /ui/login", c.loginPage)
	mux.HandleFunc("POST /ui/login", c.login)
	mux.HandleFunc("POST /ui/logout", c.post(c.logout))

	mux.HandleFunc("GET /ui/{$}", c.get(c.overview))
	mux.HandleFunc("GET /ui/apps", c.get(c.apps))
	mux.HandleFunc("POST /ui/apps", c.post(c.deploy))
	mux.HandleFunc("GET /ui/apps/{tenant}/{app}", c.get(c.app))
	mux.HandleFunc("GET /ui/apps/{tenant}/{app}/instances", c.get(c.instancesFragment))
	mux.HandleFunc("GET /ui/apps/{tenant}/{app}/logs", c.get(c.logsFragment))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/scale", c.post(c.scale))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/update", c.post(c.update))
	mux.HandleFunc("POST /ui/apps/{tenant}/{app}/rollback", c.post(c.rollback))
	mux.HandleFunc("GET /ui/hosts", c.get(c.hosts))
	mux.HandleFunc("GET /ui/hosts/table", c.get(c.hostsFragment))
	mux.HandleFunc("GET /ui/pools", c.get(c.pools))
	mux.HandleFunc("GET /ui/events", c.get(c.events))
	mux.HandleFunc("GET /ui/drills", c.get(c.drills))
	mux.HandleFunc("GET /ui/billing", c.get(c.billing))
	c.registerLive(mux)
	c.registerAdmin(mux)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such page", http.StatusNotFound)
	})
	return mux
}

// session returns the request's live session, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value)
}

// client returns an API client acting with the session's token.
func (c *Console) client(s *session) *client.Client {
	cl, err := client.New(client.Config{Address: "http://console.invalid", Token: s.token, HTTPClient: c.hc})
	if err != nil {
		panic(err) // the address is a constant that parses
	}
	return cl
}

// get wraps a page: no session sends the browser to the login form.
func (c *Console) get(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			if isFragment(r.URL.Path) {
				http.Error(w, "signed out", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(w, r, s)
	}
}

// isFragment reports whether a path is a live table's fragment, which
// answers 401 rather than a redirect when signed out (the script then
// goes to the login page).
func isFragment(path string) bool {
	for _, suffix := range []string{"/instances", "/logs", "/hosts/table", "/cluster/table"} {
		if strings.HasSuffix(path, suffix) {
			return true
		}
	}
	return false
}

// post wraps an action: it needs a session and that session's CSRF token
// in the form, or it is refused with 403 before anything is done.
func (c *Console) post(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		s := c.session(r)
		if s == nil {
			http.Error(w, "not signed in", http.StatusForbidden)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if !equal(r.PostForm.Get("csrf"), s.CSRF) {
			c.log.Warn("console: POST refused: missing or wrong CSRF token", "path", r.URL.Path, "session_user", s.Name)
			http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(w, r, s)
	}
}

// setCookie sets one of the console's cookies: HttpOnly, SameSite=Strict,
// Secure over TLS, for /ui/ only (value "" with maxAge -1 clears it).
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/ui/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}
