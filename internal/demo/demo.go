// Package demo is the small HTTP app built into the wharf binary (`wharf
// demo`), so that a first deploy needs no image registry and no other
// program: the dev hub runs it from a FROM scratch image of the binary
// (Docker) or as the binary itself (exec).
//
// It answers / with a line naming its app and instance and /healthz with
// ok, logs a startup line and one line per request up to a bound (a load
// test must not flood the log store), and stops cleanly when its context
// ends (SIGTERM).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxLogged is how many requests are logged when Config leaves it 0.
const DefaultMaxLogged = 100

// Config configures the demo app.
type Config struct {
	// Addr is the listen address, such as ":8080". Required.
	Addr string
	// App names the app in answers and logs. Empty: "demo".
	App string
	// Instance names this instance (its instance id, else the hostname).
	// Empty: "unknown".
	Instance string
	// Log receives the startup line and the request lines. Nil: discarded.
	Log io.Writer
	// MaxLogged bounds the request lines; one more line says that logging
	// stopped. Zero: DefaultMaxLogged; negative: no request lines.
	MaxLogged int
}

func (c Config) withDefaults() Config {
	if c.App == "" {
		c.App = "demo"
	}
	if c.Instance == "" {
		c.Instance = "unknown"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.MaxLogged == 0 {
		c.MaxLogged = DefaultMaxLogged
	}
	return c
}

// Handler serves / (200, a line naming the app and instance) and /healthz
// (200 "ok"); anything else is 404. Each request is logged to cfg.Log until
// cfg.MaxLogged requests were.
func Handler(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	var (
		mu     sync.Mutex // one line at a time on a shared writer
		logged atomic.Int64
	)
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(cfg.Log, format, args...)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from Wharf: app %s, instance %s\n", cfg.App, cfg.Instance)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		if cfg.MaxLogged < 0 {
			return
		}
		switch n := logged.Add(1); {
		case n <= int64(cfg.MaxLogged):
			logf("%s %s %s %d\n", r.Method, r.URL.Path, r.RemoteAddr, rec.status)
		case n == int64(cfg.MaxLogged)+1:
			logf("logged %d requests; further requests are not logged\n", cfg.MaxLogged)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Run serves Handler(cfg) on cfg.Addr until ctx ends, then shuts down,
// giving requests in flight up to 5 s, and returns nil.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Addr == "" {
		return errors.New("demo: listen address required")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return Serve(ctx, ln, cfg)
}

// Serve is Run on a listener it takes over.
func Serve(ctx context.Context, ln net.Listener, cfg Config) error {
	cfg = cfg.withDefaults()
	srv := &http.Server{Handler: Handler(cfg), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(cfg.Log, "demo app %s (instance %s) listening on %s\n", cfg.App, cfg.Instance, ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("demo: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	<-served
	fmt.Fprintf(cfg.Log, "demo app %s (instance %s) stopped\n", cfg.App, cfg.Instance)
	if err != nil {
		return fmt.Errorf("demo: shutdown: %w", err)
	}
	return nil
}
