package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Restart replaces every instance of an app, the way a new version with
// the same spec would (its history says restart).
func (a *Apps) Restart(ctx context.Context, name string, o *WriteOptions) (*apitypes.App, error) {
	return a.verb(ctx, name, "/restart", o)
}

// Stop runs no instance of an app and remembers its count.
func (a *Apps) Stop(ctx context.Context, name string, o *WriteOptions) (*apitypes.App, error) {
	return a.verb(ctx, name, "/stop", o)
}

// Start runs a stopped app's remembered count again.
func (a *Apps) Start(ctx context.Context, name string, o *WriteOptions) (*apitypes.App, error) {
	return a.verb(ctx, name, "/start", o)
}

func (a *Apps) verb(ctx context.Context, name, verb string, o *WriteOptions) (*apitypes.App, error) {
	var out apitypes.App
	_, err := a.c.do(ctx, http.MethodPost, appPath(name, verb), o.values(), nil, &out)
	return &out, err
}

// Undrain makes a draining or drained host ready again.
func (h *Hosts) Undrain(ctx context.Context, id string) (*apitypes.Host, error) {
	var out apitypes.Host
	_, err := h.c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(id)+"/undrain", nil, nil, &out)
	return &out, err
}

// AuditQuery selects audit entries: since a duration ago ("1h") or an RFC
// 3339 time ("" for all kept), at most Limit (0: the server's default) of
// the newest.
type AuditQuery struct {
	Since string
	Limit int
}

// Audit reads GET /v1/audit (a tenant's entries with o.Tenant; an admin
// naming none gets every entry).
func (c *Client) Audit(ctx context.Context, aq AuditQuery, o *QueryOptions) ([]apitypes.AuditEntry, error) {
	q := o.values()
	if aq.Since != "" {
		q.Set("since", aq.Since)
	}
	if aq.Limit > 0 {
		q.Set("limit", strconv.Itoa(aq.Limit))
	}
	var out []apitypes.AuditEntry
	_, err := c.do(ctx, http.MethodGet, "/v1/audit", q, nil, &out)
	return out, err
}
