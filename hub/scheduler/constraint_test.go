package scheduler

import (
	"slices"
	"strings"
	"testing"
)

func TestParseConstraint(t *testing.T) {
	tests := []struct {
		in      string
		want    Constraint
		wantErr string
	}{
		{in: "label.gpu=true", want: Constraint{"label.gpu", OpEqual, []string{"true"}}},
		{in: " zone != b ", want: Constraint{"zone", OpNotEqual, []string{"b"}}},
		{in: "pool==eu", want: Constraint{"pool", OpEqual, []string{"eu"}}},
		{in: "label.kubernetes.io/arch=arm64", want: Constraint{"label.kubernetes.io/arch", OpEqual, []string{"arm64"}}},
		{in: "label.note=a=b", want: Constraint{"label.note", OpEqual, []string{"a=b"}}},
		{in: "datacenter in dc1,dc2", want: Constraint{"datacenter", OpIn, []string{"dc1", "dc2"}}},
		{in: "datacenter in (dc1, dc2)", want: Constraint{"datacenter", OpIn, []string{"dc1", "dc2"}}},
		{in: "name not_in [web-1,web-2]", want: Constraint{"name", OpNotIn, []string{"web-1", "web-2"}}},
		{in: "label.ssd exists", want: Constraint{"label.ssd", OpExists, nil}},
		{in: "", wantErr: "empty"},
		{in: "zone", wantErr: "no operator"},
		{in: "rack=a", wantErr: `unknown attribute "rack"`},
		{in: "label.=x", wantErr: "bad label key"},
		{in: "zone=", wantErr: "needs one non-empty value"},
		{in: "zone in", wantErr: "in needs a comma-separated list"},
		{in: "zone in ()", wantErr: "comma-separated list"},
		{in: "zone in a,,b", wantErr: "empty value in list"},
		{in: "label.gpu exists true", wantErr: "exists takes no value"},
		{in: "zone!b", wantErr: "unknown operator"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseConstraint(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "constraint ") {
					t.Errorf("error %q does not name the constraint", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Attr != tt.want.Attr || got.Op != tt.want.Op || !slices.Equal(got.Values, tt.want.Values) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
			back, err := ParseConstraint(got.String())
			if err != nil || back.String() != got.String() {
				t.Errorf("round trip %q: %v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseConstraintsStopsAtFirstError(t *testing.T) {
	if _, err := ParseConstraints([]string{"zone!=b", "label.disk=ssd"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConstraints([]string{"zone!=b", "disk=ssd"}); err == nil || !strings.Contains(err.Error(), `"disk=ssd"`) {
		t.Fatalf("got %v", err)
	}
}

func TestConstraintValidate(t *testing.T) {
	bad := []Constraint{
		{Attr: "zone", Op: "~", Values: []string{"a"}},
		{Attr: "zone", Op: OpEqual},
		{Attr: "zone", Op: OpEqual, Values: []string{"a", "b"}},
		{Attr: "zone", Op: OpIn},
		{Attr: "label.x", Op: OpExists, Values: []string{"a"}},
		{Attr: "labels.x", Op: OpExists},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%#v: no error", c)
		}
	}
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{"label.gpu=true", "zone!=b", "datacenter in (a,b)", "name not_in x", "label.a exists", "pool==p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConstraint(s)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed %q into invalid %#v: %v", s, c, err)
		}
		back, err := ParseConstraint(c.String())
		if err != nil {
			t.Fatalf("%q -> %q: %v", s, c.String(), err)
		}
		if back.Attr != c.Attr || back.Op != c.Op || !slices.Equal(back.Values, c.Values) {
			t.Fatalf("%q -> %#v -> %#v", s, c, back)
		}
	})
}
