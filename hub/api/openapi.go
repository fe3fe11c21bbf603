package api

import (
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/internal/version"
)

// GET /v1/openapi.json is public: it describes the API's shapes, never
// its data, and tools read it before they have a token.
//
// The document is built from Routes() (every route the server serves)
// and routeDocs (openapi_routes.go), whose request and response types
// are turned into JSON schemas by reflection over their json tags: a
// field without omitempty is required; pointers, slices and maps may be
// null; time.Time is a date-time string; types that marshal themselves
// take the JSON type their zero value marshals to (a duration is a string
// such as "1h"; apitypes.Decimal is a JSON number written with its exact
// digits, format "decimal"; prices in requests are decimal strings).

// routeDoc annotates one route for the OpenAPI document.
type routeDoc struct {
	Route   string // the pattern given to handle, "METHOD /v1/..."
	Status  int    // the status of a successful answer
	Summary string
	Req     any    // a zero value of the request body's type; nil: no body
	Resp    any    // a zero value of the answer's type; nil: no body; oneOf{...}; media("text/csv")
	Query   string // the route's own query parameters, comma-separated
	Example *example
}

// oneOf is an answer of one of several types.
type oneOf []any

// media is an answer that is not JSON: its media type.
type media string

// example is a call of a route that succeeds on a cluster set up as the
// document's info says (the tests replay every one).
type example struct {
	Path string `json:"path"` // with its query string
	Body any    `json:"body,omitempty"`
}

// ex makes an example.
func ex(path string, body any) *example { return &example{Path: path, Body: body} }

// openAPI serves the OpenAPI 3 document.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *principal) error {
	doc, err := s.OpenAPI()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(doc)
	return err
}

// OpenAPI returns the OpenAPI 3 document of every route the server
// serves.
func (s *Server) OpenAPI() ([]byte, error) {
	docs := map[string]routeDoc{}
	order := map[string]int{}
	for i, d := range routeDocs() {
		docs[d.Route] = d
		order[d.Route] = i
	}
	g := &schemaGen{components: map[string]any{}, seen: map[reflect.Type]string{}}
	paths := map[string]map[string]any{}
	for _, route := range s.Routes() {
		method, path, ok := strings.Cut(route, " ")
		if !ok {
			return nil, fmt.Errorf("openapi: route %q has no method", route)
		}
		d, documented := docs[route]
		op := map[string]any{
			"operationId": operationID(method, path),
			"tags":        []string{routeTag(path)},
			"responses":   map[string]any{},
		}
		if !documented {
			// TestOpenAPICoversRoutes fails on this; the document still
			// lists the route.
			op["summary"] = "(not annotated)"
			op["responses"] = map[string]any{"default": map[string]any{"description": "see the server's code"}}
		} else {
			op["summary"] = d.Summary
			resp := map[string]any{"description": http.StatusText(d.Status)}
			if d.Resp != nil {
				resp["content"] = g.content(d.Resp)
			}
			op["responses"] = map[string]any{
				fmt.Sprint(d.Status): resp,
				"default":            map[string]any{"description": "an error", "content": map[string]any{"application/json": map[string]any{"schema": g.ref(reflect.TypeOf(apiError{}))}}},
			}
			if d.Req != nil {
				body := map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(d.Req))}}}
				if d.Example != nil && d.Example.Body != nil {
					body["content"].(map[string]any)["application/json"].(map[string]any)["example"] = d.Example.Body
				}
				op["requestBody"] = body
			}
			if d.Example != nil {
				op["x-wharf-example"] = map[string]any{"seq": order[route], "path": d.Example.Path, "body": d.Example.Body}
			}
		}
		op["parameters"] = parameters(path, method, d.Query)
		if !isPublic(route) {
			op["security"] = []map[string][]string{{"bearer": {}}}
		} else {
			op["security"] = []map[string][]string{}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = op
	}
	if g.err != nil {
		return nil, g.err
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Wharf API",
			"version":     version.Get().Version,
			"description": "The hub's REST API. Every route but the public ones needs Authorization: Bearer TOKEN; an admin names the tenant it acts on with ?tenant=. Errors are {\"error\", \"field\"} with their status. Examples (x-wharf-example, in seq order) run against a fresh cluster: the bootstrap example's token is used for the others.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         g.components,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// apiError is the error body's shape as the schema generator sees it.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// isPublic reports whether a route needs no token.
func isPublic(route string) bool {
	switch route {
	case "GET /v1/status", "POST /v1/bootstrap", "GET /v1/openapi.json":
		return true
	}
	return false
}

// routeTag groups routes by their first segment after /v1.
func routeTag(path string) string {
	rest := strings.TrimPrefix(path, "/v1/")
	tag, _, _ := strings.Cut(rest, "/")
	return tag
}

// operationID: "GET /v1/apps/{name}/versions" -> "get-apps-name-versions".
func operationID(method, path string) string {
	id := strings.ToLower(method) + strings.NewReplacer("/v1/", "-", "/", "-", "{", "", "}", "", ".", "-").Replace(path)
	return id
}

// parameters lists a route's path wildcards, its own query parameters,
// and the common ones: tenant for authed routes, and the blocking-query
// parameters of reads.
func parameters(path, method, query string) []any {
	out := []any{}
	for _, seg := range strings.Split(path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
			out = append(out, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
	}
	var names []string
	for _, q := range strings.Split(query, ",") {
		if q = strings.TrimSpace(q); q != "" && !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	if !slices.Contains(names, "tenant") && !isPublic(method+" "+path) {
		names = append(names, "tenant")
	}
	if method == http.MethodGet && !isPublic(method+" "+path) {
		for _, q := range []string{"index", "wait", "stale"} {
			if !slices.Contains(names, q) {
				names = append(names, q)
			}
		}
	}
	for _, q := range names {
		out = append(out, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
	}
	return out
}

// schemaGen turns Go types into JSON schemas; named structs become
// components referenced by name.
type schemaGen struct {
	components map[string]any
	seen       map[reflect.Type]string
	err        error
}

func (g *schemaGen) content(resp any) map[string]any {
	switch r := resp.(type) {
	case media:
		return map[string]any{string(r): map[string]any{"schema": map[string]any{"type": "string"}}}
	case oneOf:
		var alts []any
		for _, x := range r {
			alts = append(alts, g.schema(reflect.TypeOf(x)))
		}
		return map[string]any{"application/json": map[string]any{"schema": map[string]any{"oneOf": alts}}}
	}
	return map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(resp))}}
}

var (
	timeType        = reflect.TypeOf(time.Time{})
	rawType         = reflect.TypeOf(json.RawMessage{})
	marshalerType   = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshalType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

// schema returns the schema of t (not nullable).
func (g *schemaGen) schema(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	case t.Kind() != reflect.Struct && t.Kind() != reflect.Pointer && (t.Implements(marshalerType) || t.Implements(textMarshalType)):
		return g.marshaled(t)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": g.field(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.field(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		return g.ref(t)
	}
	if g.err == nil {
		g.err = fmt.Errorf("openapi: no schema for %s", t)
	}
	return map[string]any{}
}

// field is the schema of a value that may be null: pointers, slices and
// maps (a nil one marshals to null).
func (g *schemaGen) field(t reflect.Type) map[string]any {
	s := g.schema(t)
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
	default:
		return s
	}
	if len(s) == 0 {
		return s // anything, null included
	}
	if _, isRef := s["$ref"]; isRef {
		return map[string]any{"allOf": []any{s}, "nullable": true}
	}
	c := map[string]any{"nullable": true}
	for k, v := range s {
		c[k] = v
	}
	return c
}

// marshaled is the schema of a type that marshals itself: the JSON type
// of its zero value.
func (g *schemaGen) marshaled(t reflect.Type) map[string]any {
	b, err := json.Marshal(reflect.Zero(t).Interface())
	if err != nil || len(b) == 0 {
		return map[string]any{}
	}
	switch b[0] {
	case '"':
		return map[string]any{"type": "string"}
	case 't', 'f':
		return map[string]any{"type": "boolean"}
	case '[':
		return map[string]any{"type": "array"}
	case '{':
		return map[string]any{"type": "object"}
	case 'n':
		return map[string]any{}
	}
	if t.Name() == "Decimal" {
		// Written with its exact digits: read it as a decimal, not a float.
		return map[string]any{"type": "number", "format": "decimal"}
	}
	return map[string]any{"type": "number"}
}

// ref returns a reference to the component of struct t, building it once.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name, ok := g.seen[t]
	if !ok {
		name = t.Name()
		if name == "" {
			return g.object(t)
		}
		for taken := true; taken; {
			taken = false
			for _, n := range g.seen {
				if n == name {
					name += "_"
					taken = true
				}
			}
		}
		g.seen[t] = name
		g.components[name] = map[string]any{} // breaks cycles
		g.components[name] = g.object(t)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// object is a struct's schema: its JSON fields, embedded structs'
// fields inlined, omitempty ones optional.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			s := g.field(f.Type)
			if strings.Contains(","+opts+",", ",string,") {
				s = map[string]any{"type": "string"}
			}
			props[name] = s
			if !strings.Contains(","+opts+",", ",omitempty,") && !strings.Contains(","+opts+",", ",omitzero,") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		slices.Sort(required)
		out["required"] = required
	}
	return out
}
