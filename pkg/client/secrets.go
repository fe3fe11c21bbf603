package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// SetSecrets merges secrets into an app's (a change rolls the app out as
// a new version) and returns their names.
func (a *Apps) SetSecrets(ctx context.Context, name string, secrets apitypes.SecretsRequest, o *WriteOptions) (*apitypes.Secrets, error) {
	var out apitypes.Secrets
	_, err := a.c.do(ctx, http.MethodPut, appPath(name, "/secrets"), o.values(), secrets, &out)
	return &out, err
}

// Secrets lists the names of an app's secrets (never their values).
func (a *Apps) Secrets(ctx context.Context, name string, o *QueryOptions) (*apitypes.Secrets, *QueryMeta, error) {
	v, m, err := get[apitypes.Secrets](ctx, a.c, appPath(name, "/secrets"), o)
	return &v, m, err
}

// UnsetSecret removes one secret of an app.
func (a *Apps) UnsetSecret(ctx context.Context, name, key string, o *WriteOptions) error {
	_, err := a.c.do(ctx, http.MethodDelete, appPath(name, "/secrets/"+url.PathEscape(key)), o.values(), nil, nil)
	return err
}
