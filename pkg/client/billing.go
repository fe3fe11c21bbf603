package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Plans is the price plans endpoint.
type Plans struct{ c *Client }

// Plans returns the plans endpoint.
func (c *Client) Plans() *Plans { return &Plans{c} }

// Create creates a plan (admins).
func (p *Plans) Create(ctx context.Context, req apitypes.PlanRequest) (*apitypes.Plan, error) {
	var out apitypes.Plan
	_, err := p.c.do(ctx, http.MethodPost, "/v1/plans", nil, req, &out)
	return &out, err
}

// List lists the plans.
func (p *Plans) List(ctx context.Context, o *QueryOptions) ([]apitypes.Plan, *QueryMeta, error) {
	return get[[]apitypes.Plan](ctx, p.c, "/v1/plans", o)
}

// Get reads one plan.
func (p *Plans) Get(ctx context.Context, name string, o *QueryOptions) (*apitypes.Plan, *QueryMeta, error) {
	v, m, err := get[apitypes.Plan](ctx, p.c, "/v1/plans/"+url.PathEscape(name), o)
	return &v, m, err
}

// Delete deletes a plan no tenant is on.
func (p *Plans) Delete(ctx context.Context, name string) error {
	_, err := p.c.do(ctx, http.MethodDelete, "/v1/plans/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// Update changes the given fields of a tenant (plan, budget).
func (t *Tenants) Update(ctx context.Context, name string, upd apitypes.TenantUpdate) (*apitypes.Tenant, error) {
	var out apitypes.Tenant
	_, err := t.c.do(ctx, http.MethodPut, "/v1/tenants/"+url.PathEscape(name), nil, upd, &out)
	return &out, err
}

// Bills lists a tenant's daily bills from one day to another (YYYY-MM-DD,
// both included; "" for this month up to today).
func (c *Client) Bills(ctx context.Context, from, to string, o *QueryOptions) ([]apitypes.Bill, error) {
	q := o.values()
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	var out []apitypes.Bill
	_, err := c.do(ctx, http.MethodGet, "/v1/bills", q, nil, &out)
	return out, err
}

// Invoice returns the tenant's (o.Tenant for admins) invoice of month
// (YYYY-MM; "" for this month).
func (c *Client) Invoice(ctx context.Context, month string, o *QueryOptions) (*apitypes.Invoice, error) {
	var out apitypes.Invoice
	_, err := c.do(ctx, http.MethodGet, "/v1/invoices", invoiceQuery(month, "", o), nil, &out)
	return &out, err
}

// Invoices returns every tenant's invoice of month (admins).
func (c *Client) Invoices(ctx context.Context, month string, o *QueryOptions) ([]apitypes.Invoice, error) {
	var out []apitypes.Invoice
	_, err := c.do(ctx, http.MethodGet, "/v1/invoices", invoiceQuery(month, "", o), nil, &out)
	return out, err
}

// InvoiceDocument returns invoices as the hub renders them: format is
// json, csv or html.
func (c *Client) InvoiceDocument(ctx context.Context, month, format string, o *QueryOptions) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/invoices", invoiceQuery(month, format, o)), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		e := &apitypes.Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return nil, e
	}
	return b, nil
}

func invoiceQuery(month, format string, o *QueryOptions) url.Values {
	q := o.values()
	if month != "" {
		q.Set("month", month)
	}
	if format != "" {
		q.Set("format", format)
	}
	return q
}
