package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/client"
)

const defaultAddr = client.DefaultAddress

// fileConfig is ~/.config/wharf/config.yaml, written by `wharf login`.
type fileConfig struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

func configPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "wharf", "config.yaml"), nil
}

func loadFileConfig() (fileConfig, error) {
	var c fileConfig
	p, err := configPath()
	if err != nil {
		return c, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, errors.New(p + ": " + err.Error())
	}
	return c, nil
}

func saveFileConfig(c fileConfig) (string, error) {
	p, err := configPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", err
	}
	return p, atomicfile.Write(p, b, 0o600)
}

// client builds an API client: flag > environment > login config > default.
func (e *env) client() (*client.Client, error) {
	fc, err := loadFileConfig()
	if err != nil {
		return nil, fail(err)
	}
	addr := first(e.addr, os.Getenv("WHARF_ADDR"), fc.Addr)
	cfg := client.Config{Address: first(addr, defaultAddr), Token: first(e.token, os.Getenv("WHARF_TOKEN"), fc.Token), OnRetry: e.retrying}
	c, err := client.New(cfg)
	if err != nil {
		return nil, usagef("%v: set WHARF_ADDR, pass --addr, or run `wharf login`", err)
	}
	e.addrUsed, e.addrDefault, e.tokenSet = c.Address(), addr == "", cfg.Token != ""
	return c, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func (e *env) query() *client.QueryOptions {
	return &client.QueryOptions{Tenant: e.tenant, Stale: e.stale}
}

func (e *env) write() *client.WriteOptions {
	return &client.WriteOptions{Tenant: e.tenant}
}
