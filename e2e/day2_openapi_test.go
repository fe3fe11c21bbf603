package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
)

// TestOpenAPIExamplesReplay fetches /v1/openapi.json from a real hub,
// replays every example in order against a fresh cluster and validates
// each answer against the documented response schema. Every tag has at
// least one example.
func TestOpenAPIExamplesReplay(t *testing.T) {
	c := hubtest.New(t, 1, hubtest.Options{})
	base := c.Nodes[0].URL()
	resp, err := http.Get(base + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json without a token: %d %s", resp.StatusCode, raw)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document (%v): %.200s", err, raw)
	}
	type op struct {
		Tags      []string                  `json:"tags"`
		Security  []map[string]any          `json:"security"`
		Responses map[string]map[string]any `json:"responses"`
		Example   *struct {
			Seq  int             `json:"seq"`
			Path string          `json:"path"`
			Body json.RawMessage `json:"body"`
		} `json:"x-wharf-example"`
		method string
	}
	var ops []op
	tags := map[string]int{}
	for path, byMethod := range doc.Paths {
		for method, b := range byMethod {
			var o op
			if err := json.Unmarshal(b, &o); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			o.method = strings.ToUpper(method)
			for _, tag := range o.Tags {
				if o.Example != nil {
					tags[tag]++
				} else if _, ok := tags[tag]; !ok {
					tags[tag] = 0
				}
			}
			if o.Example != nil {
				ops = append(ops, o)
			}
		}
	}
	for tag, n := range tags {
		if n == 0 {
			t.Errorf("tag %q has no example: give one of its routes an ex(...) in hub/api/openapi_routes.go", tag)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Example.Seq < ops[j].Example.Seq })
	v := &validator{components: doc.Components.Schemas}
	token := ""
	for _, o := range ops {
		ex := o.Example
		var body io.Reader
		if len(ex.Body) > 0 && string(ex.Body) != "null" {
			body = bytes.NewReader(ex.Body)
		}
		req, _ := http.NewRequest(o.method, base+ex.Path, body)
		if len(o.Security) > 0 {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var status string
		for code := range o.Responses {
			if code != "default" {
				status = code
			}
		}
		if strconv.Itoa(resp.StatusCode) != status {
			t.Errorf("%s %s: %d %s, documented %s", o.method, ex.Path, resp.StatusCode, got, status)
			continue
		}
		if ex.Path == "/v1/bootstrap" {
			var b struct{ Token string }
			json.Unmarshal(got, &b)
			token = b.Token
		}
		content, _ := o.Responses[status]["content"].(map[string]any)
		js, ok := content["application/json"].(map[string]any)
		if !ok {
			continue
		}
		var x any
		if err := json.Unmarshal(got, &x); err != nil {
			t.Errorf("%s %s: the answer is not JSON: %v", o.method, ex.Path, err)
			continue
		}
		if err := v.validate(js["schema"].(map[string]any), x, "answer"); err != nil {
			t.Errorf("%s %s: the answer does not match its schema: %v\n%s", o.method, ex.Path, err, got)
		}
	}
	if len(ops) < 20 || token == "" {
		t.Fatalf("%d examples replayed (token from the bootstrap example: %t)", len(ops), token != "")
	}
	t.Logf("%d examples replayed over %d tags", len(ops), len(tags))

	// The validator itself refuses what the schemas do not allow.
	bad := []struct {
		schema string
		value  any
	}{
		{`{"$ref":"#/components/schemas/Tenant"}`, map[string]any{"name": "x"}}, // required fields missing
		{`{"type":"array","items":{"type":"integer"}}`, []any{1.5}},
		{`{"type":"string","format":"date-time"}`, "yesterday"},
		{`{"type":"object","properties":{"a":{"type":"string"}}}`, map[string]any{"b": "x"}},
		{`{"type":"string"}`, nil},
	}
	for _, b := range bad {
		var s map[string]any
		json.Unmarshal([]byte(b.schema), &s)
		if err := v.validate(s, b.value, "x"); err == nil {
			t.Errorf("the validator accepts %v against %s", b.value, b.schema)
		}
	}
}

// validator checks a decoded JSON value against the subset of JSON Schema
// the hub's document uses: $ref, allOf, oneOf, type, nullable, properties
// and required (unknown properties are refused: the schemas come from the
// very types the server writes), items, additionalProperties, minimum,
// format date-time.
type validator struct {
	components map[string]any
}

func (v *validator) validate(s map[string]any, x any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target, ok := v.components[name].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: unknown $ref %s", at, ref)
		}
		return v.validate(target, x, at+"<"+name+">")
	}
	if x == nil {
		if s["nullable"] == true || len(s) == 0 {
			return nil
		}
		return fmt.Errorf("%s: null where the schema does not allow it", at)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if err := v.validate(sub.(map[string]any), x, at); err != nil {
				return err
			}
		}
	}
	if alts, ok := s["oneOf"].([]any); ok {
		n := 0
		var errs []string
		for _, sub := range alts {
			if err := v.validate(sub.(map[string]any), x, at); err == nil {
				n++
			} else {
				errs = append(errs, err.Error())
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of oneOf's schemas (%s)", at, n, strings.Join(errs, "; "))
		}
	}
	switch s["type"] {
	case nil:
	case "object":
		m, ok := x.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an object", at, x)
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := m[r.(string)]; !ok {
					return fmt.Errorf("%s: required %q missing", at, r)
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		extra, _ := s["additionalProperties"].(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if p, ok := props[k].(map[string]any); ok {
				if err := v.validate(p, m[k], at+"."+k); err != nil {
					return err
				}
			} else if extra != nil {
				if err := v.validate(extra, m[k], at+"."+k); err != nil {
					return err
				}
			} else {
				return fmt.Errorf("%s: property %q is not in the schema", at, k)
			}
		}
	case "array":
		a, ok := x.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array", at, x)
		}
		items, _ := s["items"].(map[string]any)
		for i, e := range a {
			if items != nil {
				if err := v.validate(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case "string":
		str, ok := x.(string)
		if !ok {
			return fmt.Errorf("%s: %T, want a string", at, x)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				return fmt.Errorf("%s: %q is not a date-time", at, str)
			}
		}
	case "integer", "number":
		f, ok := x.(float64)
		if !ok {
			return fmt.Errorf("%s: %T, want a number", at, x)
		}
		if s["type"] == "integer" && f != math.Trunc(f) {
			return fmt.Errorf("%s: %v is not an integer", at, f)
		}
		if m, ok := s["minimum"].(float64); ok && f < m {
			return fmt.Errorf("%s: %v is below %v", at, f, m)
		}
	case "boolean":
		if _, ok := x.(bool); !ok {
			return fmt.Errorf("%s: %T, want a boolean", at, x)
		}
	default:
		return fmt.Errorf("%s: the validator does not know type %v", at, s["type"])
	}
	return nil
}
