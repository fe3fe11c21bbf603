package client

import (
	"context"
	"net/http"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// UsageQuery selects metered usage: an app ("" for all), a period (zero
// times: the server's defaults, this month up to now) and a grouping
// (apitypes.UsageByHour, ByDay, ByApp; "" for hours).
type UsageQuery struct {
	App      string
	From, To time.Time
	Group    string
}

// Usage reads GET /v1/usage (the tenant from o; an admin naming none gets
// every tenant's).
func (c *Client) Usage(ctx context.Context, uq UsageQuery, o *QueryOptions) ([]apitypes.UsageRow, error) {
	q := o.values()
	if uq.App != "" {
		q.Set("app", uq.App)
	}
	if !uq.From.IsZero() {
		q.Set("from", uq.From.Format(time.RFC3339))
	}
	if !uq.To.IsZero() {
		q.Set("to", uq.To.Format(time.RFC3339))
	}
	if uq.Group != "" {
		q.Set("group", uq.Group)
	}
	var out []apitypes.UsageRow
	_, err := c.do(ctx, http.MethodGet, "/v1/usage", q, nil, &out)
	return out, err
}
