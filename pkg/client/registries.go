package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Registries is the tenant's private registries endpoint.
type Registries struct{ c *Client }

// Registries returns the private registries endpoint.
func (c *Client) Registries() *Registries { return &Registries{c} }

// Add stores the tenant's credentials for a registry, replacing any it
// had for that server.
func (r *Registries) Add(ctx context.Context, req apitypes.RegistryRequest, o *WriteOptions) (*apitypes.Registry, error) {
	var out apitypes.Registry
	_, err := r.c.do(ctx, http.MethodPost, "/v1/registries", o.values(), req, &out)
	return &out, err
}

// List lists the tenant's registries (server and username, never the
// password).
func (r *Registries) List(ctx context.Context, o *QueryOptions) ([]apitypes.Registry, *QueryMeta, error) {
	return get[[]apitypes.Registry](ctx, r.c, "/v1/registries", o)
}

// Delete removes the tenant's credentials for a registry server.
func (r *Registries) Delete(ctx context.Context, server string, o *WriteOptions) error {
	_, err := r.c.do(ctx, http.MethodDelete, "/v1/registries/"+url.PathEscape(server), o.values(), nil, nil)
	return err
}
