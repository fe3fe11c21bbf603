package docker

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver"
)

// pullOptions returns how to pull image, and how a failure names where
// it was pulled from: the registry and whether with credentials. The
// credentials travel as X-Registry-Auth (base64url JSON), which the daemon
// hands to the registry and never stores.
func pullOptions(image string, auth *driver.RegistryAuth) (client.ImagePullOptions, string, error) {
	host := registryHost(image)
	if auth == nil {
		if host == "" {
			return client.ImagePullOptions{}, "registry docker.io", nil
		}
		return client.ImagePullOptions{}, "registry " + host + " (no credentials for it)", nil
	}
	b, err := json.Marshal(registry.AuthConfig{Username: auth.Username, Password: auth.Password, ServerAddress: auth.Server})
	if err != nil {
		return client.ImagePullOptions{}, "", fmt.Errorf("registry credentials for %s: %w", auth.Server, err)
	}
	from := fmt.Sprintf("registry %s (as %s)", auth.Server, auth.Username)
	return client.ImagePullOptions{RegistryAuth: base64.URLEncoding.EncodeToString(b)}, from, nil
}

// registryHost is the registry an image is pulled from, by Docker's rule
// ("host[:port]/path:tag"; no host: Docker Hub, "").
func registryHost(image string) string {
	first, rest, ok := strings.Cut(image, "/")
	if !ok || rest == "" || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return ""
	}
	return first
}
