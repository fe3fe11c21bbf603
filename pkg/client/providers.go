package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Providers is the provider accounts endpoint.
type Providers struct{ c *Client }

// Providers returns the provider accounts endpoint.
func (c *Client) Providers() *Providers { return &Providers{c} }

// Create adds a provider account; the hub checks the credentials with the
// cloud first.
func (p *Providers) Create(ctx context.Context, req apitypes.ProviderRequest) (*apitypes.Provider, error) {
	var out apitypes.Provider
	_, err := p.c.do(ctx, http.MethodPost, "/v1/providers", nil, req, &out)
	return &out, err
}

// Update replaces a provider account (credentials included).
func (p *Providers) Update(ctx context.Context, req apitypes.ProviderRequest) (*apitypes.Provider, error) {
	var out apitypes.Provider
	_, err := p.c.do(ctx, http.MethodPut, "/v1/providers/"+url.PathEscape(req.Name), nil, req, &out)
	return &out, err
}

// List lists provider accounts.
func (p *Providers) List(ctx context.Context, o *QueryOptions) ([]apitypes.Provider, *QueryMeta, error) {
	return get[[]apitypes.Provider](ctx, p.c, "/v1/providers", o)
}

// Get reads one provider account.
func (p *Providers) Get(ctx context.Context, name string, o *QueryOptions) (*apitypes.Provider, *QueryMeta, error) {
	v, m, err := get[apitypes.Provider](ctx, p.c, "/v1/providers/"+url.PathEscape(name), o)
	return &v, m, err
}

// Delete deletes a provider account (refused while a pool uses it).
func (p *Providers) Delete(ctx context.Context, name string) error {
	_, err := p.c.do(ctx, http.MethodDelete, "/v1/providers/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// Machines is the machines endpoint.
type Machines struct{ c *Client }

// Machines returns the machines endpoint.
func (c *Client) Machines() *Machines { return &Machines{c} }

// List lists the machines of pool ("" for every pool).
func (m *Machines) List(ctx context.Context, pool string, o *QueryOptions) ([]apitypes.Machine, *QueryMeta, error) {
	q := QueryOptions{}
	if o != nil {
		q = *o
	}
	if pool != "" {
		extra := url.Values{}
		for k, v := range q.Extra {
			extra[k] = v
		}
		extra.Set("pool", pool)
		q.Extra = extra
	}
	return get[[]apitypes.Machine](ctx, m.c, "/v1/machines", &q)
}

// Update replaces a pool with req (the whole pool).
func (p *Pools) Update(ctx context.Context, req apitypes.PoolRequest) (*apitypes.Pool, error) {
	var out apitypes.Pool
	_, err := p.c.do(ctx, http.MethodPut, "/v1/pools/"+url.PathEscape(req.Name), nil, req, &out)
	return &out, err
}
