package drivertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// RegistryMessage is what the registry MissingImage starts says of every
// image: its answer to a manifest request, which a driver must report.
const RegistryMessage = "wharf test registry has no such image"

// MissingImage starts an image registry on loopback (Docker trusts
// 127.0.0.0/8 over plain HTTP) that has no image at all, and returns the
// name of an image in it. Pulling it fails with the registry's own
// error, which carries RegistryMessage. The registry stops at the end of
// the test.
func MissingImage(t testing.TB, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		if r.URL.Path == "/v2/" {
			_, _ = w.Write([]byte("{}"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"` + RegistryMessage + `"}]}`))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") + "/" + name
}
