package kubernetes

import (
	"testing"

	"github.com/wharf-platform/wharf/agent/driver"
)

func TestPodEnvAddsSecrets(t *testing.T) {
	spec := driver.Spec{InstanceID: "i-1", Tenant: "acme", App: "web", Image: "web:1", Env: map[string]string{"A": "1", "S": "from-env"},
		Secrets: map[string]string{"S": "from-secret", "DB_PASSWORD": "pw"}}
	got := map[string]string{}
	for _, e := range podFor(spec, "h1", nil).Spec.Containers[0].Env {
		got[e.Name] = e.Value
	}
	if got["A"] != "1" || got["S"] != "from-secret" || got["DB_PASSWORD"] != "pw" {
		t.Fatalf("pod env %v", got)
	}
}
