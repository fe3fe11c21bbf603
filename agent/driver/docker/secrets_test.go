package docker

import (
	"reflect"
	"testing"

	"github.com/wharf-platform/wharf/agent/driver"
)

func TestEnvAddsSecrets(t *testing.T) {
	spec := driver.Spec{Env: map[string]string{"A": "1", "S": "from-env"}, Secrets: map[string]string{"S": "from-secret", "DB_PASSWORD": "pw"},
		Ports: []driver.Port{{ContainerPort: 8080}}}
	if got, want := env(spec), []string{"A=1", "DB_PASSWORD=pw", "PORT=8080", "S=from-secret"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("env %v, want %v", got, want)
	}
}
