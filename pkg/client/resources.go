package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Tenants is the tenants endpoint.
type Tenants struct{ c *Client }

// Tenants returns the tenants endpoint.
func (c *Client) Tenants() *Tenants { return &Tenants{c} }

// Create creates a tenant.
func (t *Tenants) Create(ctx context.Context, req apitypes.TenantRequest) (*apitypes.Tenant, error) {
	var out apitypes.Tenant
	_, err := t.c.do(ctx, http.MethodPost, "/v1/tenants", nil, req, &out)
	return &out, err
}

// List lists tenants.
func (t *Tenants) List(ctx context.Context, o *QueryOptions) ([]apitypes.Tenant, *QueryMeta, error) {
	return get[[]apitypes.Tenant](ctx, t.c, "/v1/tenants", o)
}

// Get reads one tenant.
func (t *Tenants) Get(ctx context.Context, name string, o *QueryOptions) (*apitypes.Tenant, *QueryMeta, error) {
	v, m, err := get[apitypes.Tenant](ctx, t.c, "/v1/tenants/"+url.PathEscape(name), o)
	return &v, m, err
}

// Delete deletes a tenant (it must have no apps).
func (t *Tenants) Delete(ctx context.Context, name string) error {
	_, err := t.c.do(ctx, http.MethodDelete, "/v1/tenants/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// Tokens is the tokens endpoint.
type Tokens struct{ c *Client }

// Tokens returns the tokens endpoint.
func (c *Client) Tokens() *Tokens { return &Tokens{c} }

// Create creates a token; the answer's Secret is shown only this once.
func (t *Tokens) Create(ctx context.Context, req apitypes.TokenRequest) (*apitypes.Token, error) {
	var out apitypes.Token
	_, err := t.c.do(ctx, http.MethodPost, "/v1/tokens", nil, req, &out)
	return &out, err
}

// List lists tokens (of o.Tenant for admins).
func (t *Tokens) List(ctx context.Context, o *QueryOptions) ([]apitypes.Token, *QueryMeta, error) {
	return get[[]apitypes.Token](ctx, t.c, "/v1/tokens", o)
}

// Self describes the client's own token.
func (t *Tokens) Self(ctx context.Context) (*apitypes.Token, error) {
	v, _, err := get[apitypes.Token](ctx, t.c, "/v1/tokens/self", nil)
	return &v, err
}

// Get reads one token's metadata.
func (t *Tokens) Get(ctx context.Context, id string, o *QueryOptions) (*apitypes.Token, *QueryMeta, error) {
	v, m, err := get[apitypes.Token](ctx, t.c, "/v1/tokens/"+url.PathEscape(id), o)
	return &v, m, err
}

// Revoke deletes a token.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	_, err := t.c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// Pools is the pools endpoint.
type Pools struct{ c *Client }

// Pools returns the pools endpoint.
func (c *Client) Pools() *Pools { return &Pools{c} }

// Create creates a pool.
func (p *Pools) Create(ctx context.Context, req apitypes.PoolRequest) (*apitypes.Pool, error) {
	var out apitypes.Pool
	_, err := p.c.do(ctx, http.MethodPost, "/v1/pools", nil, req, &out)
	return &out, err
}

// List lists pools.
func (p *Pools) List(ctx context.Context, o *QueryOptions) ([]apitypes.Pool, *QueryMeta, error) {
	return get[[]apitypes.Pool](ctx, p.c, "/v1/pools", o)
}

// Get reads one pool.
func (p *Pools) Get(ctx context.Context, name string, o *QueryOptions) (*apitypes.Pool, *QueryMeta, error) {
	v, m, err := get[apitypes.Pool](ctx, p.c, "/v1/pools/"+url.PathEscape(name), o)
	return &v, m, err
}

// Delete deletes a pool.
func (p *Pools) Delete(ctx context.Context, name string) error {
	_, err := p.c.do(ctx, http.MethodDelete, "/v1/pools/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// Apps is the apps endpoint.
type Apps struct{ c *Client }

// Apps returns the apps endpoint.
func (c *Client) Apps() *Apps { return &Apps{c} }

func appPath(name string, rest string) string { return "/v1/apps/" + url.PathEscape(name) + rest }

// Create creates an app; 409 if its name is taken.
func (a *Apps) Create(ctx context.Context, spec apitypes.AppSpec, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPost, "/v1/apps", o.values(), spec, &out)
	return &out, err
}

// Put creates or updates an app; created reports which. The answer's
// index is the write's Raft index.
func (a *Apps) Put(ctx context.Context, spec apitypes.AppSpec, o *WriteOptions) (app *apitypes.App, created bool, index uint64, err error) {
	var out apitypes.App
	resp, err := a.c.do(ctx, http.MethodPut, appPath(spec.Name, ""), o.values(), spec, &out)
	if err != nil {
		return nil, false, 0, err
	}
	return &out, resp.StatusCode == http.StatusCreated, meta(resp).LastIndex, nil
}

// List lists apps.
func (a *Apps) List(ctx context.Context, o *QueryOptions) ([]apitypes.App, *QueryMeta, error) {
	return get[[]apitypes.App](ctx, a.c, "/v1/apps", o)
}

// Get reads an app.
func (a *Apps) Get(ctx context.Context, name string, o *QueryOptions) (*apitypes.App, *QueryMeta, error) {
	v, m, err := get[apitypes.App](ctx, a.c, appPath(name, ""), o)
	return &v, m, err
}

// Delete deletes an app.
func (a *Apps) Delete(ctx context.Context, name string, o *WriteOptions) error {
	_, err := a.c.do(ctx, http.MethodDelete, appPath(name, ""), o.values(), nil, nil)
	return err
}

// Scale sets the desired instance count.
func (a *Apps) Scale(ctx context.Context, name string, instances int, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPost, appPath(name, "/scale"), o.values(), apitypes.ScaleRequest{Instances: &instances}, &out)
	return &out, err
}

// Rollback makes an earlier version current again.
func (a *Apps) Rollback(ctx context.Context, name string, version int, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPost, appPath(name, "/rollback"), o.values(), apitypes.RollbackRequest{Version: version}, &out)
	return &out, err
}

// History lists an app's deployments and scalings, oldest first.
func (a *Apps) History(ctx context.Context, name string, o *QueryOptions) ([]apitypes.Deployment, *QueryMeta, error) {
	return get[[]apitypes.Deployment](ctx, a.c, appPath(name, "/history"), o)
}

// Versions lists an app's versions.
func (a *Apps) Versions(ctx context.Context, name string, o *QueryOptions) ([]apitypes.AppVersion, *QueryMeta, error) {
	return get[[]apitypes.AppVersion](ctx, a.c, appPath(name, "/versions"), o)
}

// Instances lists an app's instances.
func (a *Apps) Instances(ctx context.Context, name string, o *QueryOptions) ([]apitypes.Instance, *QueryMeta, error) {
	return get[[]apitypes.Instance](ctx, a.c, appPath(name, "/instances"), o)
}

// Promote rolls a canary's version out to every instance.
func (a *Apps) Promote(ctx context.Context, name string, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPost, appPath(name, "/promote"), o.values(), nil, &out)
	return &out, err
}

// Failback moves the app's instances in failover pools back to its own
// pools (failback manual).
func (a *Apps) Failback(ctx context.Context, name string, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPost, appPath(name, "/failback"), o.values(), nil, &out)
	return &out, err
}

// Abort ends a canary, making the version it replaced current again.
func (a *Apps) Abort(ctx context.Context, name string, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPost, appPath(name, "/abort"), o.values(), nil, &out)
	return &out, err
}
