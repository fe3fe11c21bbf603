package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestSecretsPutGetDelete(t *testing.T) {
	f := auditedFixture(t)
	const plain = "pa55-w0rd-NEVER-SHOWN"
	base := "/v1/apps/web/secrets"
	var app apitypes.App
	f.ok("acme/developer", "GET", "/v1/apps/web", nil, &app)
	v0 := app.Version

	var got apitypes.Secrets
	f.ok("acme/developer", "PUT", base, apitypes.SecretsRequest{"DB_PASSWORD": plain, "API_KEY": "k1"}, &got)
	if !slices.Equal(got.Names, []string{"API_KEY", "DB_PASSWORD"}) || got.Version != v0+1 || got.Revision != 1 {
		t.Fatalf("after PUT: %+v (app was version %d)", got, v0)
	}
	// Merge: a new key keeps the others; a repeated value changes nothing.
	f.ok("acme/developer", "PUT", base, apitypes.SecretsRequest{"TOKEN": "t"}, &got)
	if !slices.Equal(got.Names, []string{"API_KEY", "DB_PASSWORD", "TOKEN"}) || got.Version != v0+2 {
		t.Fatalf("after merge: %+v", got)
	}
	f.ok("acme/developer", "PUT", base, apitypes.SecretsRequest{"TOKEN": "t", "DB_PASSWORD": plain}, &got)
	if got.Version != v0+2 || got.Revision != 2 {
		t.Fatalf("a PUT of the same values made a version: %+v", got)
	}
	// The viewer lists the names.
	f.ok("acme/viewer", "GET", base, nil, &got)
	if !slices.Equal(got.Names, []string{"API_KEY", "DB_PASSWORD", "TOKEN"}) {
		t.Fatalf("GET as viewer: %+v", got)
	}
	// DELETE removes one; an unknown one is 404.
	if code, b, _ := f.do("acme/developer", "DELETE", base+"/API_KEY", nil); code != 204 {
		t.Fatalf("DELETE: %d %s", code, b)
	}
	if code, b, _ := f.do("acme/developer", "DELETE", base+"/API_KEY", nil); code != 404 {
		t.Fatalf("DELETE again: %d %s", code, b)
	}
	f.ok("acme/developer", "GET", base, nil, &got)
	if !slices.Equal(got.Names, []string{"DB_PASSWORD", "TOKEN"}) || got.Version != v0+3 {
		t.Fatalf("after DELETE: %+v", got)
	}
	// A rollback to the first version keeps the current secrets.
	f.ok("acme/developer", "POST", "/v1/apps/web/rollback", apitypes.RollbackRequest{Version: v0}, nil)
	f.ok("acme/developer", "GET", base, nil, &got)
	if !slices.Equal(got.Names, []string{"DB_PASSWORD", "TOKEN"}) || got.Version != v0 {
		t.Fatalf("after rollback: %+v", got)
	}

	// No read shows the value, nor does the audit log; the store holds it
	// sealed.
	for _, path := range []string{"/v1/apps/web", "/v1/apps/web/versions", "/v1/apps/web/history", base, "/v1/events", "/v1/audit"} {
		code, b, _ := f.do("acme/tenant-admin", "GET", path, nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		if bytes.Contains(b, []byte(plain)) {
			t.Fatalf("GET %s shows the secret's value: %s", path, b)
		}
	}
	var puts int
	for _, e := range f.audit("admin", "?tenant=acme") {
		if strings.HasPrefix(e.Path, base) {
			puts++
		}
	}
	if puts != 5 { // three PUTs, two DELETEs
		t.Fatalf("audit entries of the secrets calls: %d, want 5", puts)
	}
	a, _ := f.api.cfg.Store.Snapshot().App(nil, "acme", "web")
	raw, _ := json.Marshal(a)
	if bytes.Contains(raw, []byte(plain)) {
		t.Fatal("the store holds the plain value")
	}
	open, err := f.api.cfg.Keys.Open(a.Secrets["DB_PASSWORD"], state.SecretAD("acme", "web", "DB_PASSWORD"))
	if err != nil || string(open) != plain {
		t.Fatalf("the sealed value opens to %q, %v", open, err)
	}
}

func TestSecretsBadInput(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 1 << 20 })
	base := "/v1/apps/web/secrets"
	quarter := strings.Repeat("q", apitypes.MaxSecretValue)
	f.ok("acme/developer", "PUT", base, apitypes.SecretsRequest{"A": quarter, "B": quarter, "C": quarter}, nil)
	before, _ := f.api.cfg.Store.Snapshot().App(nil, "acme", "web")
	tests := []struct {
		name, method, path string
		body               any
		code               int
		field              string
	}{
		{"empty", "PUT", base, `{}`, 400, "secrets"},
		{"not an object", "PUT", base, `["A"]`, 400, ""},
		{"number value", "PUT", base, `{"A":1}`, 400, ""},
		{"bad name", "PUT", base, `{"1ABC":"v"}`, 400, "1ABC"},
		{"dash", "PUT", base, `{"A-B":"v"}`, 400, "A-B"},
		{"reserved PORT", "PUT", base, `{"PORT":"1"}`, 400, "PORT"},
		{"reserved WHARF_", "PUT", base, `{"WHARF_APP":"x"}`, 400, "WHARF_APP"},
		{"value too big", "PUT", base, apitypes.SecretsRequest{"BIG": quarter + "x"}, 400, "BIG"},
		{"NUL", "PUT", base, `{"N":"a\u0000b"}`, 400, "N"},
		{"app total", "PUT", base, apitypes.SecretsRequest{"D": quarter, "E": "e"}, 422, "secrets"},
		{"no app", "PUT", "/v1/apps/nope/secrets", `{"A":"v"}`, 404, ""},
		{"delete bad name", "DELETE", base + "/not-a-name", nil, 400, "not-a-name"},
		{"delete unknown", "DELETE", base + "/ZZZ", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, b, _ := f.do("acme/developer", tc.method, tc.path, tc.body)
			if code != tc.code {
				t.Fatalf("%d %s, want %d", code, b, tc.code)
			}
			var e apitypes.Error
			if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
				t.Fatalf("no error message: %s", b)
			}
			if tc.field != "" && e.Field != tc.field {
				t.Fatalf("field %q, want %q (%s)", e.Field, tc.field, b)
			}
		})
	}
	after, _ := f.api.cfg.Store.Snapshot().App(nil, "acme", "web")
	if after.ModifyIndex != before.ModifyIndex || after.Version != before.Version {
		t.Fatal("bad input changed the app")
	}
}
