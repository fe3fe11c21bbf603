package cloudsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeNovaRequest feeds arbitrary methods, paths, queries and
// bodies, with and without a valid token, through the OpenStack
// simulator's whole request path: nothing may panic, and every answer
// must be well-formed JSON, an error with its code and a message.
func FuzzDecodeNovaRequest(f *testing.F) {
	for _, seed := range []struct {
		method, target, body string
		token                bool
	}{
		{"POST", "/v3/auth/tokens", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"u","domain":{"name":"d"},"password":"p"}}},"scope":{"project":{"name":"p","domain":{"id":"d"}}}}}`, false},
		{"POST", "/v3/auth/tokens", `{"auth":{"identity":{"methods":["password"],"password":null},"scope":{"project":null}}}`, false},
		{"POST", "/compute/v2.1/servers", `{"server":{"name":"wharf-m1","flavorRef":"2","imageRef":"img","networks":[{"uuid":"net"}],"metadata":{"wharf-cluster":"c1"},"user_data":"I2Nsb3VkLWNvbmZpZwo="}}`, true},
		{"POST", "/compute/v2.1/servers", `{"server":{"name":"x","flavorRef":"1","imageRef":"img","networks":"auto","min_count":2}}`, true},
		{"POST", "/compute/v2.1/servers", `{"server":{"name":"x","networks":[{"port":"p"}],"metadata":{"":"v"}}}`, true},
		{"GET", "/compute/v2.1/servers/detail?name=%5Ewharf-&limit=1&marker=x&status=active", "", true},
		{"GET", "/compute/v2.1/servers/detail?name=(((&limit=99999999999999999999", "", true},
		{"DELETE", "/compute/v2.1/servers/0b1c2d3e-0000-4000-8000-000000000000", "", true},
		{"GET", "/compute/v2.1/flavors/detail?limit=2&marker=2", "", true},
		{"GET", "/image/v2/images?name=ubuntu-24.04", "", true},
		{"GET", "/network/v2.0/networks/", "", true},
		{"GET", "/", "", false},
		{"PATCH", "/compute/v2.1/servers/x/y", "{", true},
	} {
		f.Add(seed.method, seed.target, seed.body, seed.token)
	}
	s, err := NewOpenStack(OpenStackOptions{
		Users:        []OpenStackUser{{Name: "u", Password: "p", Project: "p", Domain: "d"}},
		Images:       []OpenStackResource{{ID: "img", Name: "ubuntu-24.04"}},
		Networks:     []OpenStackResource{{ID: "net", Name: "private"}},
		MaxInstances: 50,
		BootDelay:    time.Hour,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	token := "gAAAAAfuzz"
	s.tokens[token] = novaToken{user: s.users[0], project: "p", expires: time.Now().Add(24 * time.Hour)}
	f.Fuzz(func(t *testing.T, method, target, body string, withToken bool) {
		r, err := http.NewRequest(method, "http://sim"+target, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(target, "/") {
			return // not a request a client can send
		}
		if withToken {
			r.Header.Set("X-Auth-Token", token)
		}
		w := httptest.NewRecorder()
		s.serveHTTP(w, r)
		if w.Code == http.StatusNoContent {
			return
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, target, w.Code, w.Body.Bytes())
		}
		if w.Code < 400 {
			return
		}
		if len(doc) != 1 {
			t.Fatalf("error answer %s", w.Body.Bytes())
		}
		for _, raw := range doc {
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(raw, &e); err != nil || e.Code != w.Code || e.Message == "" {
				t.Fatalf("error answer %d %s", w.Code, w.Body.Bytes())
			}
		}
	})
}
