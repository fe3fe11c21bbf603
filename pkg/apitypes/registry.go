package apitypes

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// RegistryRequest is the body of POST /v1/registries: a tenant's
// credentials for a private image registry. Posting a server again
// replaces its credentials.
type RegistryRequest struct {
	// Server is the registry's host[:port] as image names start with
	// ("registry.example.com", "127.0.0.1:5000"); an http:// or https://
	// prefix and a trailing slash are dropped.
	Server   string `json:"server"`
	Username string `json:"username"`
	// Password is sealed by the hub and never returned by a read.
	Password string `json:"password"`
}

// Registry is a tenant's registry as reads show it: never the password.
type Registry struct {
	Tenant      string    `json:"tenant"`
	Server      string    `json:"server"`
	Username    string    `json:"username"`
	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// dockerHub lists the names of Docker Hub: images without a registry host
// are pulled from it, and credentials for it are not kept here.
var dockerHub = []string{"docker.io", "index.docker.io", "registry-1.docker.io"}

// Validate checks the request and normalizes Server.
func (r *RegistryRequest) Validate() error {
	server, err := NormalizeRegistry(r.Server)
	if err != nil {
		return err
	}
	r.Server = server
	switch {
	case r.Username == "":
		return FieldError("username", "username is required")
	case len(r.Username) > 255:
		return FieldError("username", "username is longer than 255 characters")
	case strings.ContainsAny(r.Username, ":\n\r"):
		return FieldError("username", "username must not contain ':' or a line break")
	case r.Password == "":
		return FieldError("password", "password is required")
	case len(r.Password) > 4096:
		return FieldError("password", "password is longer than 4096 bytes")
	}
	return nil
}

// NormalizeRegistry returns a registry server as image names spell it
// (host[:port], lower case), or a field error when s is not one.
func NormalizeRegistry(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, p := range []string{"https://", "http://"} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.ToLower(strings.TrimSuffix(s, "/"))
	if s == "" {
		return "", FieldError("server", "server is required (host[:port], e.g. registry.example.com or 127.0.0.1:5000)")
	}
	if strings.ContainsAny(s, "/@?# ") {
		return "", FieldError("server", "server %q must be a host[:port] without a path", s)
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", FieldError("server", "server %q has an invalid port", s)
		}
	}
	if host == "" || len(host) > 253 || !validHost(host) {
		return "", FieldError("server", "server %q is not a host[:port]", s)
	}
	for _, h := range dockerHub {
		if host == h {
			return "", FieldError("server", "%s is Docker Hub: images without a registry host are pulled from it without credentials", s)
		}
	}
	return s, nil
}

func validHost(h string) bool {
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return true
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ImageRegistry returns the registry host an image is pulled from, by
// Docker's rule: the part before the first '/' when it contains a '.' or
// a ':' or is "localhost". An image without one ("nginx:1",
// "library/nginx") is Docker Hub's: "".
func ImageRegistry(image string) string {
	first, rest, ok := strings.Cut(image, "/")
	if !ok || rest == "" {
		return ""
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return ""
	}
	return strings.ToLower(first)
}
