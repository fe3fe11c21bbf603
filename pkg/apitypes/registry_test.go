package apitypes

import "testing"

func TestImageRegistry(t *testing.T) {
	for image, want := range map[string]string{
		"nginx":                             "",
		"nginx:1.27":                        "",
		"library/nginx:1":                   "",
		"team/app/web:1":                    "",
		"docker.io/library/nginx":           "docker.io",
		"localhost/web":                     "localhost",
		"localhost:5000/web:1":              "localhost:5000",
		"127.0.0.1:5000/team/web:1":         "127.0.0.1:5000",
		"Registry.Example.com/web@sha256:1": "registry.example.com",
		"registry.example.com/":             "",
		"[::1]:5000/web":                    "[::1]:5000",
	} {
		if got := ImageRegistry(image); got != want {
			t.Errorf("ImageRegistry(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestNormalizeRegistry(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"registry.example.com", "registry.example.com"},
		{"https://Registry.Example.com/", "registry.example.com"},
		{"http://127.0.0.1:5000", "127.0.0.1:5000"},
		{" localhost:5000 ", "localhost:5000"},
		{"[::1]:5000", "[::1]:5000"},
		{"", ""},
		{"registry.example.com/team", ""},
		{"registry.example.com:0", ""},
		{"registry.example.com:http", ""},
		{"user@registry.example.com", ""},
		{"-bad.example.com", ""},
		{"docker.io", ""},
		{"index.docker.io", ""},
	} {
		got, err := NormalizeRegistry(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeRegistry(%q) = %q, want an error", tt.in, got)
			} else if e, ok := err.(*Error); !ok || e.Field != "server" {
				t.Errorf("NormalizeRegistry(%q): %v, want a server field error", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeRegistry(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
