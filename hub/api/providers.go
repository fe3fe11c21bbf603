package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/accounts"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/providers"
)

// defaultCheckTimeout bounds the credential check of POST and PUT
// /v1/providers (one cheap read call to the cloud).
const defaultCheckTimeout = 15 * time.Second

func providerOut(a *state.ProviderAccount, pools []*state.Pool) apitypes.Provider {
	out := apitypes.Provider{Name: a.Name, Type: a.Type, Region: a.Region, Endpoint: a.Endpoint, Insecure: a.Insecure,
		CreatedAt: a.CreatedAt, CreateIndex: a.CreateIndex, ModifyIndex: a.ModifyIndex}
	if len(a.SealedCredentials) > 0 {
		out.Credentials = apitypes.CredentialsSet
	}
	for _, p := range pools {
		out.Pools = append(out.Pools, p.Name)
	}
	return out
}

func machineOut(m *state.Machine) apitypes.Machine {
	return apitypes.Machine{ID: m.ID, Pool: m.Pool, Provider: m.Provider, ProviderID: m.ProviderID, State: m.State, Host: m.Host,
		CreatedAt: m.CreatedAt, Error: m.Error, StateSince: m.StateSince, ModifyIndex: m.ModifyIndex}
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "listing providers"); err != nil {
		return err
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		as, err := snap.ProviderAccounts(ws)
		if err != nil {
			return nil, 0, err
		}
		out := make([]apitypes.Provider, 0, len(as))
		for _, a := range as {
			pools, _ := snap.PoolsUsingProvider(ws, a.Name)
			out = append(out, providerOut(a, pools))
		}
		return out, snap.Index(state.TableProviders, state.TablePools), nil
	})
}

func (s *Server) getProvider(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "reading providers"); err != nil {
		return err
	}
	name := r.PathValue("name")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		a, err := snap.ProviderAccount(ws, name)
		if err != nil {
			return nil, 0, err
		}
		if a == nil {
			return nil, 0, errNotFound("provider", name)
		}
		pools, _ := snap.PoolsUsingProvider(ws, a.Name)
		return providerOut(a, pools), snap.Index(state.TableProviders, state.TablePools), nil
	})
}

func (s *Server) createProvider(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.writeProvider(w, r, p, "")
}

func (s *Server) putProvider(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.writeProvider(w, r, p, r.PathValue("name"))
}

// writeProvider creates (path "") or replaces an account: the credentials
// are decoded for the type, checked against the cloud, sealed, and only
// then committed.
func (s *Server) writeProvider(w http.ResponseWriter, r *http.Request, p *principal, path string) error {
	if err := requireAdmin(p, "managing providers"); err != nil {
		return err
	}
	var req apitypes.ProviderRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if path != "" && req.Name == "" {
		req.Name = path
	}
	if path != "" && req.Name != path {
		return apitypes.FieldError("name", "the body names provider %q, the path %q", req.Name, path)
	}
	if err := req.Validate(); err != nil {
		return err
	}
	creds, err := providers.DecodeCredentials(req.Type, req.Credentials)
	if err != nil {
		return apitypes.FieldError("credentials", "%v", err)
	}
	old, err := s.cfg.Store.Snapshot().ProviderAccount(nil, req.Name)
	if err != nil {
		return err
	}
	switch {
	case path == "" && old != nil:
		return &apitypes.Error{Status: http.StatusConflict, Field: "name", Message: "provider " + req.Name + " already exists"}
	case path != "" && old == nil:
		return errNotFound("provider", req.Name)
	}
	if s.cfg.Keys == nil {
		return errors.New("this hub has no data key to seal credentials with")
	}
	acct := providers.Account{Name: req.Name, Type: req.Type, Region: req.Region, Endpoint: req.Endpoint, Insecure: req.Insecure, Credentials: creds}
	if err := s.checkAccount(r.Context(), acct); err != nil {
		return err
	}
	sealed, err := accounts.Seal(s.cfg.Keys, req.Name, creds)
	if err != nil {
		return err
	}
	st := state.ProviderAccount{Name: req.Name, Type: req.Type, Region: req.Region, Endpoint: req.Endpoint, Insecure: req.Insecure, SealedCredentials: sealed}
	code := http.StatusCreated
	if path == "" {
		_, err = s.apply(r.Context(), state.ProviderCreateType, &state.ProviderCreateRequest{Account: st, Time: s.cfg.Now().UTC()})
	} else {
		code = http.StatusOK
		_, err = s.apply(r.Context(), state.ProviderUpdateType, &state.ProviderUpdateRequest{Account: st, Time: s.cfg.Now().UTC()})
	}
	if err != nil {
		return err
	}
	snap := s.cfg.Store.Snapshot()
	got, err := snap.ProviderAccount(nil, req.Name)
	if err != nil || got == nil {
		return errNotFound("provider", req.Name)
	}
	pools, _ := snap.PoolsUsingProvider(nil, got.Name)
	return writeJSON(w, code, providerOut(got, pools))
}

// checkAccount makes one cheap read call with the credentials: a type this
// binary lacks, or credentials the cloud refuses, are 422 with the cloud's
// message.
func (s *Server) checkAccount(ctx context.Context, acct providers.Account) error {
	prov, err := s.cfg.OpenProvider(acct)
	if err != nil {
		return &apitypes.Error{Status: http.StatusUnprocessableEntity, Field: "type", Message: err.Error()}
	}
	timeout := s.cfg.ProviderCheckTimeout
	if timeout == 0 {
		timeout = defaultCheckTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := prov.Check(ctx); err != nil {
		msg := err.Error()
		if ctx.Err() != nil {
			msg = fmt.Sprintf("the %s API did not answer within %s: %v", acct.Type, timeout, err)
		}
		return &apitypes.Error{Status: http.StatusUnprocessableEntity, Field: "credentials", Message: "provider " + acct.Name + " refused the check: " + msg}
	}
	return nil
}

func (s *Server) deleteProvider(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "deleting providers"); err != nil {
		return err
	}
	if _, err := s.apply(r.Context(), state.ProviderDeleteType, &state.ProviderDeleteRequest{Name: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listMachines(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p, "listing machines"); err != nil {
		return err
	}
	pool := r.URL.Query().Get("pool")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		ms, err := snap.Machines(ws, pool)
		return mapAll(ms, machineOut), snap.Index(state.TableMachines), err
	})
}

// provisionIn checks a pool's provision against its account's type (the
// template) and returns it as stored: the template compacted, as given. A
// pool that names no provider gets its account's type.
func (s *Server) provisionIn(req *apitypes.PoolRequest) (*state.Provision, error) {
	pr := req.Provision
	if pr == nil {
		return nil, nil
	}
	acct, err := s.cfg.Store.Snapshot().ProviderAccount(nil, pr.Provider)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, &apitypes.Error{Status: http.StatusUnprocessableEntity, Field: "provision.provider", Message: "provider " + pr.Provider + " does not exist"}
	}
	if req.Provider != "" && req.Provider != acct.Type {
		return nil, &apitypes.Error{Status: http.StatusUnprocessableEntity, Field: "provider",
			Message: fmt.Sprintf("pool provider %s differs from the type of provider account %s (%s)", req.Provider, acct.Name, acct.Type)}
	}
	if req.Provider == "" {
		// What the pool could ever run is judged from its provider.
		req.Provider = acct.Type
	}
	if _, err := providers.DecodeTemplate(acct.Type, pr.Template); err != nil {
		return nil, apitypes.FieldError("provision.template", "%v", err)
	}
	var tmpl bytes.Buffer
	if err := json.Compact(&tmpl, pr.Template); err != nil {
		return nil, apitypes.FieldError("provision.template", "provision.template is not valid JSON")
	}
	return &state.Provision{Provider: pr.Provider, Template: tmpl.Bytes(), MinHosts: pr.MinHosts, MaxHosts: pr.MaxHosts,
		ScaleDownAfter: state.Duration(pr.ScaleDownAfter), BootTimeout: state.Duration(pr.BootTimeout)}, nil
}

func provisionOut(pr *state.Provision) *apitypes.Provision {
	if pr == nil {
		return nil
	}
	return &apitypes.Provision{Provider: pr.Provider, Template: bytes.Clone(pr.Template), MinHosts: pr.MinHosts, MaxHosts: pr.MaxHosts,
		ScaleDownAfter: apitypes.Duration(pr.ScaleDownAfter), BootTimeout: apitypes.Duration(pr.BootTimeout)}
}

// poolDetail adds to a pool what GET /v1/pools/{name} shows of its hosts,
// instances and machines.
func poolDetail(snap *state.Snapshot, ws memdb.WatchSet, out *apitypes.Pool) error {
	hosts, err := snap.PoolHosts(ws, out.Name)
	if err != nil {
		return err
	}
	out.Capacity, out.Usage, out.HostsByState = &apitypes.Capacity{}, &apitypes.Usage{}, map[string]int{}
	for _, h := range hosts {
		out.HostsByState[h.State]++
		if h.State == state.HostReady {
			out.Capacity.CPU += h.Inventory.CPU()
			out.Capacity.Memory += int(h.Inventory.MemoryBytes >> 20)
		}
		out.Usage.CPU += h.AllocCPU
		out.Usage.Memory += h.AllocMemory
		insts, err := snap.HostInstances(ws, h.ID)
		if err != nil {
			return err
		}
		for _, i := range insts {
			if i.Live() {
				out.Usage.Instances++
			}
		}
	}
	ms, err := snap.Machines(ws, out.Name)
	if err != nil {
		return err
	}
	if len(ms) > 0 || out.Provision != nil {
		out.MachinesByState = map[string]int{}
		for _, m := range ms {
			out.MachinesByState[m.State]++
		}
	}
	return nil
}
