package client

import (
	"context"
	"net/http"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Autoscale sets an app's autoscaling policy; the rest of its spec stays.
func (a *Apps) Autoscale(ctx context.Context, name string, policy apitypes.Autoscale, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPut, appPath(name, "/autoscale"), o.values(), policy, &out)
	return &out, err
}

// AutoscaleOff removes an app's policy: its count stays at the
// autoscaler's last decision and is the user's again.
func (a *Apps) AutoscaleOff(ctx context.Context, name string, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodDelete, appPath(name, "/autoscale"), o.values(), nil, &out)
	return &out, err
}

// AutoscaleStatus reads an app's policy, the autoscaler's inputs and its
// last decisions.
func (a *Apps) AutoscaleStatus(ctx context.Context, name string, o *QueryOptions) (*apitypes.AutoscaleStatus, *QueryMeta, error) {
	v, m, err := get[apitypes.AutoscaleStatus](ctx, a.c, appPath(name, "/autoscale"), o)
	return &v, m, err
}
