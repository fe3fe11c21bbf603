package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestErrorsOptionsAndIndex(t *testing.T) {
	var gotQuery, gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotAuth = r.URL.RawQuery, r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/v1/apps":
			w.Header().Set("X-Wharf-Index", "42")
			w.Write([]byte(`[{"name":"web","tenant":"acme","version":3}]`))
		case "/v1/apps/web":
			w.WriteHeader(409)
			w.Write([]byte(`{"error":"stale cas index 1","field":""}`))
		default:
			w.WriteHeader(502)
			w.Write([]byte("bad gateway"))
		}
	}))
	defer srv.Close()
	c, err := New(Config{Address: srv.URL, Token: "T"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	apps, meta, err := c.Apps().List(ctx, &QueryOptions{Tenant: "acme", Stale: true, WaitIndex: 7, WaitTime: 30 * time.Second})
	if err != nil || len(apps) != 1 || apps[0].Version != 3 || meta.LastIndex != 42 {
		t.Fatalf("list: %+v %+v %v", apps, meta, err)
	}
	if gotQuery != "index=7&stale=&tenant=acme&wait=30s" || gotAuth != "Bearer T" {
		t.Fatalf("query %q auth %q", gotQuery, gotAuth)
	}
	cas := uint64(1)
	_, _, _, err = c.Apps().Put(ctx, apitypes.AppSpec{Name: "web", Image: "i"}, &WriteOptions{CAS: &cas})
	if apitypes.StatusOf(err) != 409 || gotQuery != "cas=1" {
		t.Fatalf("put: %v (query %q)", err, gotQuery)
	}
	_, err = c.Status(ctx)
	if apitypes.StatusOf(err) != 502 || err.Error() != "bad gateway" {
		t.Fatalf("non-JSON error: %v", err)
	}
}

func TestAddress(t *testing.T) {
	c, err := New(Config{Address: "127.0.0.1:7480"})
	if err != nil || c.Address() != "http://127.0.0.1:7480" {
		t.Fatalf("%v %v", c, err)
	}
	if _, err := New(Config{Address: "http://"}); err == nil {
		t.Fatal("empty host accepted")
	}
}

// TestNamesEscapedOnce: a name that needs escaping reaches the server's
// router as typed, so the server's messages echo it as typed too.
func TestNamesEscapedOnce(t *testing.T) {
	mux := http.NewServeMux()
	var got string
	mux.HandleFunc("GET /v1/apps/{name}", func(w http.ResponseWriter, r *http.Request) {
		got = r.PathValue("name")
		w.Write([]byte(`{}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, base := range []string{srv.URL, srv.URL + "/"} {
		c, err := New(Config{Address: base})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"hello", "Hello World", "a/b", "50%"} {
			if _, _, err := c.Apps().Get(context.Background(), name, nil); err != nil || got != name {
				t.Fatalf("base %s: sent %q, the server saw %q (%v)", base, name, got, err)
			}
		}
	}
}

// TestRetriesWhileNoLeader checks which requests are sent again while the
// hub answers 503, and that a retried delete whose object is gone succeeds.
func TestRetriesWhileNoLeader(t *testing.T) {
	type answer struct {
		code         int
		notSubmitted bool
	}
	cases := []struct {
		name     string
		answers  []answer // the hub's answers in order; the last repeats
		call     func(*Client) error
		retryFor time.Duration
		sends    int
		status   int // the error's status; 0 means success
	}{
		{"a read is retried", []answer{{503, false}, {503, false}, {200, false}},
			func(c *Client) error { _, _, err := c.Apps().List(context.Background(), nil); return err }, 0, 3, 0},
		{"a write that may have applied is not", []answer{{503, false}, {200, false}},
			func(c *Client) error { _, err := c.Apps().Scale(context.Background(), "web", 2, nil); return err }, 0, 1, 503},
		{"a write never submitted is", []answer{{503, true}, {200, false}},
			func(c *Client) error { _, err := c.Apps().Scale(context.Background(), "web", 2, nil); return err }, 0, 2, 0},
		{"a retried delete that finds nothing succeeded", []answer{{503, false}, {404, false}},
			func(c *Client) error { return c.Apps().Delete(context.Background(), "web", nil) }, 0, 2, 0},
		{"a first delete that finds nothing is an error", []answer{{404, false}},
			func(c *Client) error { return c.Apps().Delete(context.Background(), "web", nil) }, 0, 1, 404},
		{"retries turned off", []answer{{503, false}, {200, false}},
			func(c *Client) error { _, _, err := c.Apps().List(context.Background(), nil); return err }, -1, 1, 503},
		{"retries end with the budget", []answer{{503, false}},
			func(c *Client) error { _, _, err := c.Apps().List(context.Background(), nil); return err }, 300 * time.Millisecond, 6, 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sends atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(sends.Add(1))
				a := tc.answers[min(n-1, len(tc.answers)-1)]
				if a.code == 503 {
					w.Header().Set("Retry-After", "0")
					if a.notSubmitted {
						w.Header().Set("X-Wharf-Not-Submitted", "true")
					}
				}
				w.WriteHeader(a.code)
				switch {
				case a.code != 200:
					w.Write([]byte(`{"error":"no cluster leader"}`))
				case r.Method == http.MethodGet:
					w.Write([]byte(`[]`))
				default:
					w.Write([]byte(`{"name":"web"}`))
				}
			}))
			defer srv.Close()
			c, err := New(Config{Address: srv.URL, RetryFor: tc.retryFor})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(c)
			if got := apitypes.StatusOf(err); got != tc.status {
				t.Fatalf("status %d (%v), want %d", got, err, tc.status)
			}
			// A budget of 300 ms at 50 ms per wait: 6 sends; a loaded
			// machine may fit fewer, never more.
			if n := int(sends.Load()); n != tc.sends && !(tc.retryFor > 0 && n > 1 && n < tc.sends) {
				t.Fatalf("%d sends, want %d", n, tc.sends)
			}
		})
	}
}
