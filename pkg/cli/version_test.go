package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/internal/version"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestVersion(t *testing.T) {
	_, addr := newFakeAPI(t, map[string]func(http.ResponseWriter){
		"GET /v1/status": jsonAnswer(200, apitypes.Status{Node: "hub1", State: "leader", Version: "v9.9.9"}),
	})
	client := version.Get().Version

	out, stderr, code := run(t, "", "--addr", addr, "version")
	if code != 0 || !strings.Contains(out, "Client: "+client) || !strings.Contains(out, "Server: v9.9.9 (node hub1 at "+addr+")") || stderr != "" {
		t.Fatalf("version: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	out, _, code = run(t, "", "--addr", addr, "-o", "json", "version")
	var got versionOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("version -o json: exit %d, %v: %q", code, err, out)
	}
	if got.Client.Version != client || got.Client.GoVersion == "" || got.Server == nil || got.Server.Version != "v9.9.9" || got.Note != "" {
		t.Fatalf("version -o json: %+v", got)
	}

	// No hub: the client's version, a note, exit 0.
	out, stderr, code = run(t, "", "--addr", "http://127.0.0.1:1", "version")
	if code != 0 || !strings.Contains(out, "Client: "+client) || strings.Contains(out, "Server") || !strings.Contains(stderr, "Note: no hub answered at http://127.0.0.1:1") {
		t.Fatalf("version without a hub: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, _, code = run(t, "", "--addr", "http://127.0.0.1:1", "-o", "json", "version")
	got = versionOutput{}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || got.Server != nil || got.Client.Version != client || !strings.Contains(got.Note, "no hub answered") {
		t.Fatalf("version -o json without a hub: exit %d, %v: %q", code, err, out)
	}
}
