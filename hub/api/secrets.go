package api

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// An app's secrets: PUT merges names and values, GET lists the names,
// DELETE removes one. Values are sealed with the data key on this node
// before they are committed, so the Raft log, snapshots and data dirs
// never hold them in plain; no answer ever carries one. A change makes a
// new version that the app rolls out like any other.

func (s *Server) registerSecrets() {
	s.handle("GET /v1/apps/{name}/secrets", authed, s.listSecrets)
	s.handle("PUT /v1/apps/{name}/secrets", authed, s.putSecrets)
	s.handle("DELETE /v1/apps/{name}/secrets/{key}", authed, s.deleteSecret)
}

func secretsOut(a *state.App) apitypes.Secrets {
	return apitypes.Secrets{Tenant: a.Tenant, App: a.Name, Names: append([]string{}, a.SecretNames()...), Revision: a.SecretsRevision, Version: a.Version}
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.readApp(w, r, p, func(_ memdb.WatchSet, _ *state.Snapshot, a *state.App) (any, error) {
		return secretsOut(a), nil
	})
}

// putSecrets merges the body's secrets into the app's. Values equal to
// those already set (under the current key) are left out, so that a
// repeated PUT makes no new version; when nothing changes nothing is
// committed.
func (s *Server) putSecrets(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var req apitypes.SecretsRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if s.cfg.Keys == nil {
		return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "this hub has no data key to seal secrets with"}
	}
	a, err := s.cfg.Store.Snapshot().App(nil, tenant, name)
	if err != nil {
		return err
	}
	if a == nil {
		return errNotFound("app", name)
	}
	total := 0
	for k, v := range a.Secrets {
		if _, replaced := req[k]; !replaced {
			total += len(v) - state.SealOverhead
		}
	}
	sealed := map[string][]byte{}
	for k, v := range req {
		total += len(v)
		if old, ok := a.Secrets[k]; ok && s.cfg.Keys.IsCurrent(old) {
			if plain, err := s.cfg.Keys.Open(old, state.SecretAD(tenant, name, k)); err == nil {
				same := bytes.Equal(plain, []byte(v))
				clear(plain)
				if same {
					continue
				}
			}
		}
		b, err := s.cfg.Keys.Seal([]byte(v), state.SecretAD(tenant, name, k))
		if err != nil {
			return err
		}
		sealed[k] = b
	}
	if total > apitypes.MaxAppSecrets {
		return &apitypes.Error{Status: http.StatusUnprocessableEntity, Field: "secrets",
			Message: fmt.Sprintf("app %s's secrets would total %d bytes, over the limit of %d", name, total, apitypes.MaxAppSecrets)}
	}
	if len(a.Secrets)+countNew(a, req) > apitypes.MaxSecretCount {
		return &apitypes.Error{Status: http.StatusUnprocessableEntity, Field: "secrets",
			Message: fmt.Sprintf("app %s would have more than %d secrets", name, apitypes.MaxSecretCount)}
	}
	if len(sealed) > 0 {
		if _, err := s.apply(r.Context(), state.SecretsSetType, &state.SecretsSetRequest{Tenant: tenant, App: name, Sealed: sealed, Time: s.cfg.Now().UTC()}); err != nil {
			return err
		}
	}
	return s.answerSecrets(w, tenant, name)
}

func countNew(a *state.App, req apitypes.SecretsRequest) int {
	n := 0
	for k := range req {
		if _, ok := a.Secrets[k]; !ok {
			n++
		}
	}
	return n
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := appScope(r, p, true)
	if err != nil {
		return err
	}
	name, key := r.PathValue("name"), r.PathValue("key")
	if err := apitypes.CheckSecretName(key); err != nil {
		return err
	}
	if _, err := s.apply(r.Context(), state.SecretsUnsetType, &state.SecretsUnsetRequest{Tenant: tenant, App: name, Names: []string{key}, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// answerSecrets answers with the app's secrets' names as stored.
func (s *Server) answerSecrets(w http.ResponseWriter, tenant, name string) error {
	a, err := s.cfg.Store.Snapshot().App(nil, tenant, name)
	if err != nil {
		return err
	}
	if a == nil {
		return errNotFound("app", name) // deleted meanwhile
	}
	return writeJSON(w, http.StatusOK, secretsOut(a))
}
