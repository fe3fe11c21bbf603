package kubeenv

import (
	"encoding/json"
	"os"
)

// credential is how a kubeconfig's user proves who it is: a client
// certificate or a bearer token.
type credential struct {
	CertFile, KeyFile string
	Token             string
}

// writeKubeconfig writes a kubeconfig (JSON, which kubectl and client-go
// read as well as YAML) with one cluster, user and context, all named
// "kubeenv".
func writeKubeconfig(path, server, caFile string, cred credential) error {
	user := map[string]string{}
	if cred.Token != "" {
		user["token"] = cred.Token
	} else {
		user["client-certificate"] = cred.CertFile
		user["client-key"] = cred.KeyFile
	}
	cfg := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": "kubeenv",
		"clusters": []any{map[string]any{
			"name":    "kubeenv",
			"cluster": map[string]string{"server": server, "certificate-authority": caFile},
		}},
		"users": []any{map[string]any{"name": "kubeenv", "user": user}},
		"contexts": []any{map[string]any{
			"name":    "kubeenv",
			"context": map[string]string{"cluster": "kubeenv", "user": "kubeenv"},
		}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}
