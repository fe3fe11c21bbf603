package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]map[string]any `json:"schemas"`
	} `json:"components"`
}

func openAPIOf(t *testing.T, s *Server) openAPIDoc {
	t.Helper()
	b, err := s.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOpenAPICoversRoutes: the document lists exactly the routes the
// server serves, and every one of them is annotated.
func TestOpenAPICoversRoutes(t *testing.T) {
	f := newFixture(t)
	routes := f.api.Routes()
	doc := openAPIOf(t, f.api)
	annotated := map[string]bool{}
	for _, d := range routeDocs() {
		if annotated[d.Route] {
			t.Errorf("routeDocs (hub/api/openapi_routes.go) annotates %q twice: remove one line", d.Route)
		}
		annotated[d.Route] = true
		if !slices.Contains(routes, d.Route) {
			t.Errorf("routeDocs (hub/api/openapi_routes.go) annotates %q, which the server does not serve: remove its line or fix its pattern", d.Route)
		}
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			inDoc[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, r := range routes {
		if !annotated[r] {
			t.Errorf("route %q has no OpenAPI annotation: add a line to routeDocs in hub/api/openapi_routes.go, e.g.\n\t{%q, http.StatusOK, \"What it does\", nil /* or apitypes.RequestType{} */, apitypes.AnswerType{}, \"\" /* its query parameters */, nil /* or ex(path, body) */},", r, r)
		}
		if !inDoc[r] {
			t.Errorf("route %q is served but missing from /v1/openapi.json", r)
		}
		delete(inDoc, r)
	}
	for r := range inDoc {
		t.Errorf("/v1/openapi.json lists %q, which the server does not serve", r)
	}
}

// TestOpenAPISchemas checks the reflection rules on a few types.
func TestOpenAPISchemas(t *testing.T) {
	doc := openAPIOf(t, newFixture(t).api)
	prop := func(schema, name string) map[string]any {
		t.Helper()
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Fatalf("no component %s", schema)
		}
		p, ok := s["properties"].(map[string]any)[name].(map[string]any)
		if !ok {
			t.Fatalf("%s has no property %s: %v", schema, name, s["properties"])
		}
		return p
	}
	required := func(schema, name string) bool {
		req, _ := doc.Components.Schemas[schema]["required"].([]any)
		return slices.Contains(req, any(name))
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"App.name is required", required("App", "name")},
		{"App.image (omitempty) is not", !required("App", "image")},
		{"App's embedded spec is inlined", prop("App", "instances") != nil && prop("App", "tenant")["type"] == "string"},
		{"a time is a date-time string", prop("App", "created_at")["format"] == "date-time" && prop("App", "created_at")["type"] == "string"},
		{"a decimal is an exact number", prop("UsageRow", "cpu_core_seconds")["type"] == "number" && prop("UsageRow", "cpu_core_seconds")["format"] == "decimal"},
		{"a price is a decimal string", prop("PlanRequest", "prices")["additionalProperties"].(map[string]any)["type"] == "string"},
		{"a duration is a string", prop("JoinTokenRequest", "ttl")["type"] == "string"},
		{"a pointer may be null", prop("App", "instances")["nullable"] == true && prop("App", "instances")["type"] == "integer"},
		{"a slice may be null", prop("App", "pools")["nullable"] == true && prop("App", "pools")["type"] == "array"},
		{"a map is an object of its values", prop("App", "env")["additionalProperties"].(map[string]any)["type"] == "string"},
		{"the audit entry has the contract's fields", required("AuditEntry", "time") && required("AuditEntry", "actor") && required("AuditEntry", "role") &&
			required("AuditEntry", "tenant") && required("AuditEntry", "method") && required("AuditEntry", "path") && required("AuditEntry", "status") && required("AuditEntry", "object")},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("%s: not so", tt.name)
		}
	}
	var status map[string]any
	if err := json.Unmarshal(doc.Paths["/v1/status"]["get"], &status); err != nil {
		t.Fatal(err)
	}
	if sec, _ := status["security"].([]any); len(sec) != 0 {
		t.Errorf("GET /v1/status is public but its security is %v", status["security"])
	}
}
