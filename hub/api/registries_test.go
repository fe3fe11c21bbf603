package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/hub/registryauth"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

const registryPassword = "s3cr3t-Registry-Passw0rd"

func registryBody(server, user, password string) string {
	b, _ := json.Marshal(apitypes.RegistryRequest{Server: server, Username: user, Password: password})
	return string(b)
}

// TestRegistries: a tenant's credentials are sealed before they are
// committed, no answer, read, error or audit entry shows the password, a
// second POST replaces them, and bad input changes nothing.
func TestRegistries(t *testing.T) {
	f := auditedFixture(t)
	code, body, _ := f.do("acme/developer", "POST", "/v1/registries", registryBody("https://Registry.Acme.test:5000/", "ci", registryPassword))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var got apitypes.Registry
	if err := json.Unmarshal(body, &got); err != nil || got.Server != "registry.acme.test:5000" || got.Username != "ci" || got.Tenant != "acme" {
		t.Fatalf("created %s (%v)", body, err)
	}
	noPassword := func(what string, b []byte) {
		t.Helper()
		if bytes.Contains(b, []byte(registryPassword)) || bytes.Contains(b, []byte(`"password"`)) {
			t.Fatalf("%s shows the password: %s", what, b)
		}
	}
	noPassword("POST", body)
	for _, who := range []string{"acme/viewer", "acme/developer", "admin"} {
		path := "/v1/registries"
		if who == "admin" {
			path += "?tenant=acme"
		}
		var regs []apitypes.Registry
		code, body, _ := f.do(who, "GET", path, nil)
		if err := json.Unmarshal(body, &regs); code != 200 || err != nil || len(regs) != 1 || regs[0].Server != "registry.acme.test:5000" {
			t.Fatalf("GET as %s: %d %s", who, code, body)
		}
		noPassword("GET as "+who, body)
	}
	if _, body, _ := f.do("beta/developer", "GET", "/v1/registries", nil); string(bytes.TrimSpace(body)) != "[]" {
		t.Fatalf("tenant beta sees acme's registries: %s", body)
	}
	f.ok("admin", "POST", "/v1/registries?tenant=beta", registryBody("r.beta.test", "b", registryPassword), nil)
	var all []apitypes.Registry
	f.ok("admin", "GET", "/v1/registries", nil, &all) // an admin without ?tenant: every tenant's
	if len(all) != 2 || all[0].Tenant != "acme" || all[1].Tenant != "beta" {
		t.Fatalf("admin's list: %+v", all)
	}

	// Sealed in the store, bound to the tenant and server; it opens with
	// the data key.
	snap := f.api.cfg.Store.Snapshot()
	reg, _ := snap.Registry(nil, "acme", "registry.acme.test:5000")
	if reg == nil || bytes.Contains(reg.SealedPassword, []byte(registryPassword)) {
		t.Fatalf("stored %+v: missing or in plain text", reg)
	}
	if pw, err := registryauth.Open(f.api.cfg.Keys, reg); err != nil || pw != registryPassword {
		t.Fatalf("the sealed password opens to %q, %v", pw, err)
	}
	moved := reg.Copy()
	moved.Tenant = "beta"
	if _, err := registryauth.Open(f.api.cfg.Keys, moved); err == nil {
		t.Fatal("a sealed password copied to another tenant opens")
	}
	// What the gateway hands an agent: credentials only for images of
	// that registry, only for the tenant; every tenant's images of it are
	// pulled for each new container (the registry is private).
	finder := registryauth.Finder{Keys: f.api.cfg.Keys}
	for _, tt := range []struct {
		tenant, image string
		want, private bool
	}{
		{"acme", "registry.acme.test:5000/web:1", true, true},
		{"acme", "registry.acme.test:5000/team/web@sha256:0123", true, true},
		{"acme", "registry.acme.test/web:1", false, false}, // another port is another registry
		{"acme", "web:1", false, false},                    // Docker Hub's
		{"acme", "library/web:1", false, false},
		{"beta", "registry.acme.test:5000/web:1", false, true},
	} {
		c, private, err := finder.ForImage(snap, tt.tenant, tt.image)
		if err != nil || (c != nil) != tt.want || private != tt.private || (c != nil && (c.Username != "ci" || c.Password != registryPassword || c.Server != "registry.acme.test:5000")) {
			t.Errorf("credentials of %s for %s: %+v, private %v, %v; want some: %v, private %v", tt.tenant, tt.image, c, private, err, tt.want, tt.private)
		}
	}

	bad := []struct {
		name, who, method, path, body string
		code                          int
		field                         string
	}{
		{"viewer", "acme/viewer", "POST", "/v1/registries", registryBody("r.acme.test", "u", registryPassword), 403, ""},
		{"admin without tenant", "admin", "POST", "/v1/registries", registryBody("r.acme.test", "u", registryPassword), 400, "tenant"},
		{"no server", "acme/developer", "POST", "/v1/registries", registryBody("", "u", registryPassword), 400, "server"},
		{"server with a path", "acme/developer", "POST", "/v1/registries", registryBody("r.acme.test/team", "u", registryPassword), 400, "server"},
		{"bad port", "acme/developer", "POST", "/v1/registries", registryBody("r.acme.test:99999", "u", registryPassword), 400, "server"},
		{"docker hub", "acme/developer", "POST", "/v1/registries", registryBody("docker.io", "u", registryPassword), 400, "server"},
		{"no username", "acme/developer", "POST", "/v1/registries", registryBody("r.acme.test", "", registryPassword), 400, "username"},
		{"no password", "acme/developer", "POST", "/v1/registries", registryBody("r.acme.test", "u", ""), 400, "password"},
		{"unknown field", "acme/developer", "POST", "/v1/registries", `{"server":"r.acme.test","username":"u","password":"` + registryPassword + `","email":"x"}`, 400, "email"},
		{"delete missing", "acme/developer", "DELETE", "/v1/registries/none.acme.test", "", 404, ""},
		{"delete another tenant's", "beta/developer", "DELETE", "/v1/registries/registry.acme.test:5000", "", 404, ""},
		{"delete as viewer", "acme/viewer", "DELETE", "/v1/registries/registry.acme.test:5000", "", 403, ""},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := f.api.cfg.Store.Snapshot().Index(state.TableRegistries)
			var b any
			if tt.body != "" {
				b = tt.body
			}
			code, body, _ := f.do(tt.who, tt.method, tt.path, b)
			if code != tt.code {
				t.Fatalf("got %d %s, want %d", code, body, tt.code)
			}
			if strings.Contains(string(body), registryPassword) {
				t.Fatalf("the error shows the password: %s", body)
			}
			var e apitypes.Error
			if err := json.Unmarshal(body, &e); err != nil || e.Field != tt.field {
				t.Fatalf("error %s: want field %q", body, tt.field)
			}
			if after := f.api.cfg.Store.Snapshot().Index(state.TableRegistries); after != before {
				t.Fatalf("a refused request changed the registries (index %d to %d)", before, after)
			}
		})
	}

	// A second POST replaces the credentials (200), sealed anew.
	code, body, _ = f.do("acme/tenant-admin", "POST", "/v1/registries", registryBody("registry.acme.test:5000", "deploy", "other-"+registryPassword))
	if code != 200 {
		t.Fatalf("replace: %d %s", code, body)
	}
	reg2, _ := f.api.cfg.Store.Snapshot().Registry(nil, "acme", "registry.acme.test:5000")
	if pw, _ := registryauth.Open(f.api.cfg.Keys, reg2); pw != "other-"+registryPassword || reg2.Username != "deploy" || reg2.CreateIndex != reg.CreateIndex {
		t.Fatalf("after replace: %+v, password %q", reg2, pw)
	}

	// The audit log records the writes, never the password.
	es := f.audit("admin", "")
	raw, _ := json.Marshal(es)
	if !strings.Contains(string(raw), "/v1/registries") {
		t.Fatalf("no audit entry for the registry writes: %s", raw)
	}
	if strings.Contains(string(raw), registryPassword) {
		t.Fatalf("the audit log holds the password: %s", raw)
	}
	entries, _ := f.api.cfg.Store.Snapshot().AuditLog(nil)
	if raw, _ := json.Marshal(entries); strings.Contains(string(raw), registryPassword) {
		t.Fatal("the stored audit log holds the password")
	}

	// Delete, by the server as images name it (or as it was typed).
	f.ok("acme/developer", "DELETE", "/v1/registries/Registry.Acme.test:5000", nil, nil)
	if reg, _ := f.api.cfg.Store.Snapshot().Registry(nil, "acme", "registry.acme.test:5000"); reg != nil {
		t.Fatal("deleted registry still stored")
	}
}

// TestRegistriesGoWithTheirTenant: deleting a tenant removes its
// registry credentials.
func TestRegistriesGoWithTheirTenant(t *testing.T) {
	f := newFixture(t)
	f.ok("admin", "POST", "/v1/tenants", apitypes.TenantRequest{Name: "gone"}, nil)
	f.ok("admin", "POST", "/v1/registries?tenant=gone", registryBody("r.gone.test", "u", registryPassword), nil)
	f.ok("admin", "DELETE", "/v1/tenants/gone", nil, nil)
	if regs, _ := f.api.cfg.Store.Snapshot().TenantRegistries(nil, "gone"); len(regs) != 0 {
		t.Fatalf("a deleted tenant's registries remain: %d", len(regs))
	}
}
