package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Drills is the drills endpoint (admin).
type Drills struct{ c *Client }

// Drills returns the drills endpoint.
func (c *Client) Drills() *Drills { return &Drills{c} }

// Run starts a drill.
func (d *Drills) Run(ctx context.Context, req apitypes.DrillRequest) (*apitypes.Drill, error) {
	var out apitypes.Drill
	_, err := d.c.do(ctx, http.MethodPost, "/v1/drills", nil, req, &out)
	return &out, err
}

// List lists drills.
func (d *Drills) List(ctx context.Context, o *QueryOptions) ([]apitypes.Drill, *QueryMeta, error) {
	return get[[]apitypes.Drill](ctx, d.c, "/v1/drills", o)
}

// Get returns a drill and its report.
func (d *Drills) Get(ctx context.Context, id string, o *QueryOptions) (*apitypes.Drill, *QueryMeta, error) {
	out, m, err := get[apitypes.Drill](ctx, d.c, "/v1/drills/"+url.PathEscape(id), o)
	return &out, m, err
}

// End ends a drill.
func (d *Drills) End(ctx context.Context, id string) (*apitypes.Drill, error) {
	var out apitypes.Drill
	_, err := d.c.do(ctx, http.MethodPost, "/v1/drills/"+url.PathEscape(id)+"/end", nil, nil, &out)
	return &out, err
}
