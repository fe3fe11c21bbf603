package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// JoinTokens is the join-tokens endpoint.
type JoinTokens struct{ c *Client }

// JoinTokens returns the join-tokens endpoint.
func (c *Client) JoinTokens() *JoinTokens { return &JoinTokens{c} }

// Create makes a join token; the answer's Token is shown only this once.
func (j *JoinTokens) Create(ctx context.Context, req apitypes.JoinTokenRequest) (*apitypes.JoinToken, error) {
	var out apitypes.JoinToken
	_, err := j.c.do(ctx, http.MethodPost, "/v1/join-tokens", nil, req, &out)
	return &out, err
}

// List lists join tokens.
func (j *JoinTokens) List(ctx context.Context, o *QueryOptions) ([]apitypes.JoinToken, *QueryMeta, error) {
	return get[[]apitypes.JoinToken](ctx, j.c, "/v1/join-tokens", o)
}

// Revoke deletes a join token.
func (j *JoinTokens) Revoke(ctx context.Context, id string) error {
	_, err := j.c.do(ctx, http.MethodDelete, "/v1/join-tokens/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// Hosts is the hosts endpoint.
type Hosts struct{ c *Client }

// Hosts returns the hosts endpoint.
func (c *Client) Hosts() *Hosts { return &Hosts{c} }

// List lists hosts.
func (h *Hosts) List(ctx context.Context, o *QueryOptions) ([]apitypes.Host, *QueryMeta, error) {
	return get[[]apitypes.Host](ctx, h.c, "/v1/hosts", o)
}

// Get reads one host.
func (h *Hosts) Get(ctx context.Context, id string, o *QueryOptions) (*apitypes.Host, *QueryMeta, error) {
	v, m, err := get[apitypes.Host](ctx, h.c, "/v1/hosts/"+url.PathEscape(id), o)
	return &v, m, err
}

// Drain marks a host draining.
func (h *Hosts) Drain(ctx context.Context, id string) (*apitypes.Host, error) {
	var out apitypes.Host
	_, err := h.c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(id)+"/drain", nil, nil, &out)
	return &out, err
}

// Remove deletes a host; its agent can no longer connect.
func (h *Hosts) Remove(ctx context.Context, id string) error {
	_, err := h.c.do(ctx, http.MethodDelete, "/v1/hosts/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// Events lists events recorded after index after (0: all).
func (c *Client) Events(ctx context.Context, after uint64, o *QueryOptions) ([]apitypes.Event, *QueryMeta, error) {
	q := o.values()
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	var out []apitypes.Event
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", q, nil, &out)
	return out, meta(resp), err
}
