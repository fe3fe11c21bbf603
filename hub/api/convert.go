package api

import (
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func tenantOut(t *state.Tenant) apitypes.Tenant {
	c := t.Copy()
	out := apitypes.Tenant{Name: c.Name, Pools: c.Pools, Quota: quotaOut(c.Quota), CreatedAt: c.CreatedAt, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex}
	tenantBilling(&out, c)
	return out
}

func tokenOut(t *state.Token) apitypes.Token {
	return apitypes.Token{ID: t.ID, Name: t.Name, Role: apitypes.Role(t.Role), Tenant: t.Tenant, CreatedAt: t.CreatedAt, CreateIndex: t.CreateIndex, ModifyIndex: t.ModifyIndex}
}

func poolOut(p *state.Pool) apitypes.Pool {
	c := p.Copy()
	return apitypes.Pool{Name: c.Name, Datacenter: c.Datacenter, Region: c.Region, Provider: c.Provider, Labels: c.Labels, Drivers: c.Drivers,
		Provision: provisionOut(c.Provision), CreatedAt: c.CreatedAt, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex}
}

func appOut(a *state.App) apitypes.App {
	c := a.Copy()
	return apitypes.App{AppSpec: specOut(c.Spec), Tenant: c.Tenant, Version: c.Version, LatestVersion: c.LatestVersion, Pending: c.Pending, CanaryFrom: c.CanaryFrom,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex}
}

func versionOut(v *state.AppVersion) apitypes.AppVersion {
	return apitypes.AppVersion{Version: v.Version, Spec: versionSpecOut(v.Spec), CreatedAt: v.CreatedAt, Index: v.Index}
}

func deploymentOut(d *state.Deployment) apitypes.Deployment {
	return apitypes.Deployment{Index: d.Index, Kind: d.Kind, Version: d.Version, From: d.From, Instances: d.Instances,
		Strategy: d.Strategy, Message: d.Message, Time: d.Time}
}

func mapAll[S any, T any](in []*S, f func(*S) T) []T {
	out := make([]T, 0, len(in))
	for _, x := range in {
		out = append(out, f(x))
	}
	return out
}
