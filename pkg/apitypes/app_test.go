package apitypes

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppSpecValidate(t *testing.T) {
	n := func(i int) *int { return &i }
	tests := []struct {
		name  string
		spec  AppSpec
		field string // "" means valid
	}{
		{"minimal image", AppSpec{Name: "web", Image: "web:1"}, ""},
		{"minimal command", AppSpec{Name: "web", Command: []string{"./srv"}}, ""},
		{"no name", AppSpec{Image: "x"}, "name"},
		{"upper case name", AppSpec{Name: "Web", Image: "x"}, "name"},
		{"no image or command", AppSpec{Name: "web"}, "image"},
		{"negative instances", AppSpec{Name: "web", Image: "x", Instances: n(-1)}, "instances"},
		{"port out of range", AppSpec{Name: "web", Image: "x", Ports: []Port{{ContainerPort: 70000}}}, "ports"},
		{"bad protocol", AppSpec{Name: "web", Image: "x", Ports: []Port{{ContainerPort: 80, Protocol: "sctp"}}}, "ports"},
		{"two health checks", AppSpec{Name: "web", Image: "x", Ports: []Port{{ContainerPort: 80}}, Health: &Health{HTTP: "/", TCP: 80}}, "health"},
		{"http health without port", AppSpec{Name: "web", Image: "x", Health: &Health{HTTP: "/h"}}, "health"},
		{"bad spread", AppSpec{Name: "web", Image: "x", Spread: "planet"}, "spread"},
		{"fenced without max_disconnect", AppSpec{Name: "web", Image: "x", Failover: &Failover{Mode: "fenced"}}, "failover"},
		{"duplicate pool", AppSpec{Name: "web", Image: "x", Pools: []string{"a", "a"}}, "pools"},
		{"bad strategy", AppSpec{Name: "web", Image: "x", Strategy: &Strategy{Type: "yolo"}}, "strategy"},
		{"weight over 100", AppSpec{Name: "web", Image: "x", Strategy: &Strategy{Type: "canary", Weight: 101}}, "strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("valid spec refused: %v", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Status != 400 || e.Field != tt.field {
				t.Fatalf("got %#v, want a 400 naming %q", err, tt.field)
			}
		})
	}
}

func TestVersionFieldsAndNormalize(t *testing.T) {
	a := AppSpec{Name: "web", Image: "x", Ports: []Port{{ContainerPort: 80}}, Health: &Health{HTTP: "/"}}
	a.Normalize()
	if a.CPU != DefaultCPU || a.Memory != DefaultMemory || a.Ports[0].Protocol != "tcp" || a.Health.Port != 80 {
		t.Fatalf("normalize: %+v", a)
	}
	b := a
	b.Instances = new(int)
	b.Pools = []string{"p"}
	if !a.VersionFields().Equal(b.VersionFields()) {
		t.Fatal("placement changes must not make a new version")
	}
	b.Env = map[string]string{"A": "1"}
	if a.VersionFields().Equal(b.VersionFields()) {
		t.Fatal("env changes must make a new version")
	}
}

func TestDurationJSON(t *testing.T) {
	var h Health
	if err := json.Unmarshal([]byte(`{"interval":"1m30s"}`), &h); err != nil || h.Interval.D() != 90*time.Second {
		t.Fatalf("%v %v", h.Interval, err)
	}
	if err := json.Unmarshal([]byte(`{"interval":90}`), &h); err == nil {
		t.Fatal("a number was accepted as a duration")
	}
	b, _ := json.Marshal(Health{Timeout: Duration(2 * time.Second)})
	if string(b) != `{"timeout":"2s"}` {
		t.Fatalf("marshal: %s", b)
	}
}

func TestTenantLogQuota(t *testing.T) {
	for _, tc := range []struct {
		q  Quota
		ok bool
	}{
		{Quota{}, true},
		{Quota{LogBytes: 1 << 20, LogAge: Duration(24 * time.Hour)}, true},
		{Quota{LogBytes: -1}, false},
		{Quota{LogBytes: 1000}, false},
		{Quota{LogAge: Duration(-time.Second)}, false},
		{Quota{LogAge: Duration(400 * 24 * time.Hour)}, false},
	} {
		r := TenantRequest{Name: "acme", Quota: tc.q}
		if err := r.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.q, err)
		}
	}
}
