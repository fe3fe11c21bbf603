package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Routes is the routes endpoint.
type Routes struct{ c *Client }

// Routes returns the routes endpoint.
func (c *Client) Routes() *Routes { return &Routes{c} }

// Add adds a route to an app.
func (r *Routes) Add(ctx context.Context, app string, req apitypes.RouteRequest, o *WriteOptions) (*apitypes.Route, error) {
	var out apitypes.Route
	_, err := r.c.do(ctx, http.MethodPost, appPath(app, "/routes"), o.values(), req, &out)
	return &out, err
}

// List lists an app's routes (its default route first), or every route of
// the tenant when app is "".
func (r *Routes) List(ctx context.Context, app string, o *QueryOptions) ([]apitypes.Route, *QueryMeta, error) {
	if app == "" {
		return get[[]apitypes.Route](ctx, r.c, "/v1/routes", o)
	}
	return get[[]apitypes.Route](ctx, r.c, appPath(app, "/routes"), o)
}

// Delete removes a route of an app.
func (r *Routes) Delete(ctx context.Context, app, id string, o *WriteOptions) error {
	_, err := r.c.do(ctx, http.MethodDelete, appPath(app, "/routes/"+url.PathEscape(id)), o.values(), nil, nil)
	return err
}

// Certs is the certificates endpoint.
type Certs struct{ c *Client }

// Certs returns the certificates endpoint.
func (c *Client) Certs() *Certs { return &Certs{c} }

// Add uploads a certificate and its key for a domain.
func (r *Certs) Add(ctx context.Context, req apitypes.CertRequest, o *WriteOptions) (*apitypes.Cert, error) {
	var out apitypes.Cert
	_, err := r.c.do(ctx, http.MethodPost, "/v1/certs", o.values(), req, &out)
	return &out, err
}

// List lists the tenant's certificates.
func (r *Certs) List(ctx context.Context, o *QueryOptions) ([]apitypes.Cert, *QueryMeta, error) {
	return get[[]apitypes.Cert](ctx, r.c, "/v1/certs", o)
}

// Delete removes the certificate of a domain.
func (r *Certs) Delete(ctx context.Context, domain string, o *WriteOptions) error {
	_, err := r.c.do(ctx, http.MethodDelete, "/v1/certs/"+url.PathEscape(domain), o.values(), nil, nil)
	return err
}

// Stats returns an app's per-second router counts over the last since.
func (a *Apps) Stats(ctx context.Context, name string, since time.Duration, o *QueryOptions) ([]apitypes.TrafficSecond, *QueryMeta, error) {
	q := o
	if q == nil {
		q = &QueryOptions{}
	}
	c := *q
	c.Extra = url.Values{"since": {since.String()}}
	return get[[]apitypes.TrafficSecond](ctx, a.c, appPath(name, "/stats"), &c)
}

// Metrics returns the series of an app's instances over the last hour.
func (a *Apps) Metrics(ctx context.Context, name string, o *QueryOptions) ([]apitypes.MetricSeries, *QueryMeta, error) {
	return get[[]apitypes.MetricSeries](ctx, a.c, appPath(name, "/metrics"), o)
}
