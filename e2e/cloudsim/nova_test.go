package cloudsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// osClient calls the OpenStack simulator with plain HTTP, the way
// gophercloud does (providers/openstack tests it through gophercloud).
type osClient struct {
	t     testing.TB
	base  string // http://127.0.0.1:PORT
	token string
}

func newOpenStack(t testing.TB, opts OpenStackOptions) (*OpenStack, *osClient) {
	t.Helper()
	s, err := NewOpenStack(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := &osClient{t: t, base: strings.TrimSuffix(s.URL(), "/v3")}
	u := s.User()
	status, hdr, body := c.do("POST", "/v3/auth/tokens", authBody(u.Name, u.Password, u.Project, u.Domain))
	if status != http.StatusCreated || hdr.Get("X-Subject-Token") == "" {
		t.Fatalf("authenticate: %d %s", status, body)
	}
	c.token = hdr.Get("X-Subject-Token")
	return s, c
}

func authBody(user, password, project, domain string) string {
	b, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "password": password, "domain": map[string]string{"name": domain}}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]string{"name": domain}}},
	}})
	return string(b)
}

func (c *osClient) do(method, path, body string) (int, http.Header, []byte) {
	c.t.Helper()
	r, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		r.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// fail runs a call that must fail with status and returns the message.
func (c *osClient) fail(method, path, body string, status int) string {
	c.t.Helper()
	got, _, b := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, status)
	}
	var doc map[string]struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc) != 1 {
		c.t.Fatalf("error answer %s: %v", b, err)
	}
	for _, e := range doc {
		if e.Code != status || e.Message == "" {
			c.t.Fatalf("error answer %s", b)
		}
		return e.Message
	}
	return ""
}

func createBody(name string, kv ...string) string {
	srv := map[string]any{"name": name, "flavorRef": "2", "imageRef": "", "metadata": map[string]string{"wharf-cluster": "c1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		srv[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(map[string]any{"server": srv})
	return string(b)
}

func TestKeystone(t *testing.T) {
	s, c := newOpenStack(t, OpenStackOptions{})
	u := s.User()
	anon := &osClient{t: t, base: c.base}
	for name, body := range map[string]string{
		"wrong password": authBody(u.Name, u.Password+"x", u.Project, u.Domain),
		"unknown user":   authBody("nobody", u.Password, u.Project, u.Domain),
		"other project":  authBody(u.Name, u.Password, "other", u.Domain),
		"other domain":   authBody(u.Name, u.Password, u.Project, "Corp"),
		"no password":    `{"auth": {"identity": {"methods": ["token"]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			status, _, b := anon.do("POST", "/v3/auth/tokens", body)
			if status != http.StatusUnauthorized || !bytes.Contains(b, []byte(`"title":"Unauthorized"`)) || bytes.Contains(b, []byte(u.Password)) {
				t.Fatalf("%d %s", status, b)
			}
		})
	}
	anon.fail("POST", "/v3/auth/tokens", `{"nope": 1}`, http.StatusBadRequest)
	status, hdr, b := anon.do("POST", "/v3/auth/tokens", authBody(u.Name, u.Password, u.Project, u.Domain))
	var tok struct {
		Token struct {
			ExpiresAt time.Time `json:"expires_at"`
			Catalog   []struct {
				Type      string `json:"type"`
				Endpoints []struct {
					Interface, Region, URL string
				} `json:"endpoints"`
			} `json:"catalog"`
		} `json:"token"`
	}
	if status != http.StatusCreated || hdr.Get("X-Subject-Token") == "" || json.Unmarshal(b, &tok) != nil {
		t.Fatalf("authenticate: %d %s", status, b)
	}
	urls := map[string]string{}
	for _, e := range tok.Token.Catalog {
		for _, ep := range e.Endpoints {
			if ep.Interface == "public" && ep.Region == s.Region() {
				urls[e.Type] = ep.URL
			}
		}
	}
	if urls["compute"] != c.base+"/compute/v2.1" || urls["image"] != c.base+"/image" || urls["network"] != c.base+"/network" || time.Until(tok.Token.ExpiresAt) < 50*time.Minute {
		t.Fatalf("catalog %v, expires %v", urls, tok.Token.ExpiresAt)
	}
	// Every call needs a live token.
	anon.fail("GET", "/compute/v2.1/servers/detail", "", http.StatusUnauthorized)
	anon.token = "gAAAAAforged"
	anon.fail("GET", "/compute/v2.1/servers/detail", "", http.StatusUnauthorized)
	if status, _, b := c.do("GET", "/compute/v2.1/servers/detail", ""); status != http.StatusOK {
		t.Fatalf("list with a token: %d %s", status, b)
	}
	s.ExpireTokens()
	c.fail("GET", "/compute/v2.1/servers/detail", "", http.StatusUnauthorized)
	if n := s.Calls()["ListServers"]; n != 1 {
		t.Fatalf("%d counted lists, want 1 (refused tokens are not calls)", n)
	}
	// Unscoped tokens are Keystone's, not Nova's.
	status, hdr, _ = anon.do("POST", "/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "`+u.Name+`", "password": "`+u.Password+`", "domain": {"id": "`+u.Domain+`"}}}}}}`)
	if status != http.StatusCreated {
		t.Fatalf("unscoped: %d", status)
	}
	anon.token = hdr.Get("X-Subject-Token")
	anon.fail("GET", "/compute/v2.1/flavors/detail", "", http.StatusUnauthorized)
}

func TestNovaServers(t *testing.T) {
	s, c := newOpenStack(t, OpenStackOptions{MaxInstances: 3, BootDelay: time.Hour})
	img := s.Images()[0].ID
	net := s.Networks()[0].ID
	for _, tc := range []struct {
		body, want string
		status     int
	}{
		{`{"server": 1}`, "server", 400},
		{createBody(""), "name", 400},
		{createBody("a", "flavorRef", "99", "imageRef", img), "Flavor 99 could not be found", 400},
		{createBody("a", "imageRef", "nope"), "Image nope could not be found", 400},
		{createBody("a", "imageRef", img, "user_data", "%%%"), "valid base 64", 400},
		{createBody("a", "imageRef", img, "networks", "elsewhere"), "networks", 400},
	} {
		if msg := c.fail("POST", "/compute/v2.1/servers", tc.body, tc.status); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want %q", tc.body, msg, tc.want)
		}
	}
	var ids []string
	for _, name := range []string{"wharf-a", "wharf-b", "other"} {
		body := `{"server": {"name": "` + name + `", "flavorRef": "http://x/flavors/3", "imageRef": "` + img + `", "networks": [{"uuid": "` + net + `"}],` +
			` "metadata": {"wharf-cluster": "c1"}, "user_data": "I2Nsb3VkLWNvbmZpZwo="}}`
		status, _, b := c.do("POST", "/compute/v2.1/servers", body)
		var out struct {
			Server struct{ ID string } `json:"server"`
		}
		if status != http.StatusAccepted || json.Unmarshal(b, &out) != nil || out.Server.ID == "" {
			t.Fatalf("create %s: %d %s", name, status, b)
		}
		ids = append(ids, out.Server.ID)
	}
	if msg := c.fail("POST", "/compute/v2.1/servers", createBody("d", "imageRef", img), http.StatusForbidden); !strings.Contains(msg, "Quota exceeded for instances") {
		t.Fatalf("quota: %s", msg)
	}
	sv, ok := s.Server(ids[0])
	if !ok || string(sv.UserData) != "#cloud-config\n" || sv.FlavorID != "3" || sv.Status != NovaBuild || sv.Metadata["wharf-cluster"] != "c1" {
		t.Fatalf("server %+v", sv)
	}
	list := func(query string) ([]string, string) {
		status, _, b := c.do("GET", "/compute/v2.1/servers/detail"+query, "")
		var out struct {
			Servers []struct{ ID, Name, Status string } `json:"servers"`
			Links   []struct{ Rel, Href string }        `json:"servers_links"`
		}
		if status != http.StatusOK || json.Unmarshal(b, &out) != nil {
			t.Fatalf("list %s: %d %s", query, status, b)
		}
		var got []string
		for _, sv := range out.Servers {
			got = append(got, sv.ID)
		}
		next := ""
		if len(out.Links) > 0 {
			next = strings.TrimPrefix(out.Links[0].Href, c.base)
		}
		return got, next
	}
	if got, next := list("?name=%5Ewharf-"); len(got) != 2 || got[0] != ids[0] || got[1] != ids[1] || next != "" {
		t.Fatalf("by name: %v %q", got, next)
	}
	got, next := list("?name=%5Ewharf-&limit=1")
	if len(got) != 1 || got[0] != ids[0] || next == "" {
		t.Fatalf("page 1: %v %q", got, next)
	}
	got, next = list(strings.TrimPrefix(next, "/compute/v2.1/servers/detail"))
	if len(got) != 1 || got[0] != ids[1] {
		t.Fatalf("page 2: %v %q", got, next)
	}
	if got, _ = list(strings.TrimPrefix(next, "/compute/v2.1/servers/detail")); len(got) != 0 {
		t.Fatalf("page 3: %v", got)
	}
	c.fail("GET", "/compute/v2.1/servers/detail?marker=nope", "", http.StatusBadRequest)
	c.fail("GET", "/compute/v2.1/servers/detail?name=(", "", http.StatusBadRequest)
	c.fail("GET", "/compute/v2.1/servers/detail?limit=-1", "", http.StatusBadRequest)

	if status, _, _ := c.do("DELETE", "/compute/v2.1/servers/"+ids[2], ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	waitFor(t, "the deleted server to go", func() bool { _, ok := s.Server(ids[2]); return !ok })
	c.fail("GET", "/compute/v2.1/servers/"+ids[2], "", http.StatusNotFound)
	c.fail("DELETE", "/compute/v2.1/servers/"+ids[2], "", http.StatusNotFound)
	// The quota counts live servers only.
	if status, _, b := c.do("POST", "/compute/v2.1/servers", createBody("d", "imageRef", img)); status != http.StatusAccepted {
		t.Fatalf("create after a delete: %d %s", status, b)
	}
	c.fail("GET", "/compute/v2.1/flavors/42", "", http.StatusNotFound)
	c.fail("PUT", "/compute/v2.1/servers", "", http.StatusMethodNotAllowed)
	c.fail("GET", "/compute/v2.1/nothing", "", http.StatusNotFound)
	if status, _, b := c.do("GET", "/image/v2/images?name=debian-12", ""); status != 200 || !bytes.Contains(b, []byte(s.Images()[1].ID)) || bytes.Contains(b, []byte(img)) {
		t.Fatalf("images by name: %d %s", status, b)
	}
	if status, _, b := c.do("GET", "/network/v2.0/networks/"+net, ""); status != 200 || !bytes.Contains(b, []byte(`"name":"private"`)) {
		t.Fatalf("network: %d %s", status, b)
	}
	c.fail("GET", "/network/v2.0/networks/nope", "", http.StatusNotFound)
}

func TestNovaLifeAndBoot(t *testing.T) {
	var mu sync.Mutex
	booted := map[string]Instance{}
	s, c := newOpenStack(t, OpenStackOptions{BootDelay: 20 * time.Millisecond, DeleteDelay: 300 * time.Millisecond,
		Boot: func(ctx context.Context, inst Instance) error {
			mu.Lock()
			booted[inst.ID] = inst
			mu.Unlock()
			<-ctx.Done()
			return nil
		}})
	img := s.Images()[0].ID
	s.FailBoots(1, "no room")
	create := func() string {
		status, _, b := c.do("POST", "/compute/v2.1/servers", createBody("wharf-x", "imageRef", img, "user_data", "I2Nsb3VkLWNvbmZpZwo="))
		var out struct {
			Server struct{ ID string } `json:"server"`
		}
		if status != http.StatusAccepted || json.Unmarshal(b, &out) != nil {
			t.Fatalf("create: %d %s", status, b)
		}
		return out.Server.ID
	}
	failed, good := create(), create()
	waitFor(t, "boots", func() bool {
		a, _ := s.Server(failed)
		b, _ := s.Server(good)
		return a.Status == NovaError && b.Status == NovaActive
	})
	_, _, b := c.do("GET", "/compute/v2.1/servers/"+failed, "")
	if !bytes.Contains(b, []byte(`"message":"no room"`)) || !bytes.Contains(b, []byte(`"status":"ERROR"`)) {
		t.Fatalf("failed server: %s", b)
	}
	waitFor(t, "the boot hook", func() bool { mu.Lock(); defer mu.Unlock(); return booted[good].ID != "" })
	mu.Lock()
	inst := booted[good]
	_, failedBooted := booted[failed]
	mu.Unlock()
	if string(inst.UserData) != "#cloud-config\n" || inst.Tags["wharf-cluster"] != "c1" || inst.PrivateIP == "" || failedBooted {
		t.Fatalf("booted %+v (the failed one too: %v)", inst, failedBooted)
	}
	c.do("DELETE", "/compute/v2.1/servers/"+good, "")
	if sv, _ := s.Server(good); sv.Status != NovaDeleted {
		t.Fatalf("deleting: %+v", sv)
	}
	waitFor(t, "the deleted server to go", func() bool { _, ok := s.Server(good); return !ok })
}

func TestNovaFaults(t *testing.T) {
	s, c := newOpenStack(t, OpenStackOptions{})
	img := s.Images()[0].ID
	s.Throttle("ListServers", 1, 7)
	status, hdr, b := c.do("GET", "/compute/v2.1/servers/detail", "")
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") != "7" || !bytes.Contains(b, []byte("overLimit")) {
		t.Fatalf("throttled: %d %v %s", status, hdr, b)
	}
	if status, _, _ := c.do("GET", "/compute/v2.1/servers/detail", ""); status != http.StatusOK {
		t.Fatalf("after the throttle: %d", status)
	}
	s.Inject(NovaFault{Call: "CreateServer", Status: 503})
	c.fail("POST", "/compute/v2.1/servers", createBody("a", "imageRef", img), http.StatusServiceUnavailable)
	s.ClearFaults()
	s.LoseAnswers("CreateServer", 1)
	r, _ := http.NewRequest("POST", c.base+"/compute/v2.1/servers", strings.NewReader(createBody("a", "imageRef", img)))
	r.Header.Set("X-Auth-Token", c.token)
	if resp, err := http.DefaultClient.Do(r); err == nil {
		resp.Body.Close()
		t.Fatalf("a lost answer answered %d", resp.StatusCode)
	}
	if n := len(s.Servers()); n != 1 {
		t.Fatalf("%d servers after a lost answer, want 1 (the call took effect)", n)
	}
	s.SetLatency(300 * time.Millisecond)
	start := time.Now()
	c.do("GET", "/compute/v2.1/flavors/1", "")
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("no latency")
	}
	s.SetLatency(0)
	if calls := s.Calls(); calls["ListServers"] != 2 || calls["CreateServer"] != 2 || calls["GetFlavor"] != 1 {
		t.Fatalf("calls %v", calls)
	}
}

// TestOpenStackLogsNoSecrets: the simulator's debug log names calls,
// never a password, a token or user data.
func TestOpenStackLogsNoSecrets(t *testing.T) {
	var buf novaLogBuffer
	s, c := newOpenStack(t, OpenStackOptions{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	u := s.User()
	anon := &osClient{t: t, base: c.base}
	anon.do("POST", "/v3/auth/tokens", authBody(u.Name, u.Password+"-wrong", u.Project, u.Domain))
	c.do("POST", "/compute/v2.1/servers", createBody("a", "imageRef", s.Images()[0].ID, "user_data", "c2VjcmV0LXVzZXItZGF0YQ=="))
	c.do("GET", "/compute/v2.1/servers/detail", "")
	log := buf.String()
	if !strings.Contains(log, "CreateServer") {
		t.Fatalf("no call logged: %s", log)
	}
	for _, secret := range []string{u.Password, c.token, "secret-user-data", "c2VjcmV0LXVzZXItZGF0YQ"} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, log)
		}
	}
}

type novaLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *novaLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *novaLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
