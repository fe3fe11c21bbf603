// Package client is the Go client of Wharf's REST API. It imports nothing of
// the hub; the CLI and the end-to-end tests use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// DefaultAddress is the API address when nothing else is configured.
const DefaultAddress = "http://127.0.0.1:7480"

// Config configures a Client.
type Config struct {
	// Address is the hub's API base URL; a bare host:port gets http://.
	Address string
	// Token is the bearer token; "" for the endpoints that need none.
	Token string
	// HTTPClient: nil means a client with connection reuse and no timeout
	// (blocking queries may wait minutes; use contexts).
	HTTPClient *http.Client
	// RetryFor bounds how long a request is sent again while the hub
	// answers 503 (no leader: an election is under way). Only requests a
	// second send cannot harm are retried: reads, writes the hub says never
	// reached a leader, and deletes. 0 means DefaultRetryFor; a negative
	// value turns retries off.
	RetryFor time.Duration
	// OnRetry, if set, hears each 503 answer that is about to be retried.
	OnRetry func(err error)
}

// DefaultRetryFor covers an election on a loaded machine.
const DefaultRetryFor = 15 * time.Second

// DefaultConfig reads WHARF_ADDR and WHARF_TOKEN.
func DefaultConfig() Config {
	c := Config{Address: os.Getenv("WHARF_ADDR"), Token: os.Getenv("WHARF_TOKEN")}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	return c
}

// Client talks to one hub node. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	token    string
	hc       *http.Client
	retryFor time.Duration
	onRetry  func(error)
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	addr := cfg.Address
	if addr == "" {
		addr = DefaultAddress
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(strings.TrimRight(addr, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bad hub address %q", cfg.Address)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: 128, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
	}
	retryFor := cfg.RetryFor
	if retryFor == 0 {
		retryFor = DefaultRetryFor
	}
	return &Client{base: u, token: cfg.Token, hc: hc, retryFor: retryFor, onRetry: cfg.OnRetry}, nil
}

// Address returns the base URL.
func (c *Client) Address() string { return c.base.String() }

// QueryOptions tune reads.
type QueryOptions struct {
	Tenant    string        // admin tokens: the tenant to act on
	Stale     bool          // serve from the node's replica without a leader check
	WaitIndex uint64        // block until the index exceeds this
	WaitTime  time.Duration // how long to block
	Extra     url.Values    // endpoint-specific parameters
}

// QueryMeta describes a read's answer.
type QueryMeta struct {
	LastIndex uint64
}

// WriteOptions tune writes.
type WriteOptions struct {
	Tenant string
	CAS    *uint64 // write only if the object's modify index is still this
}

// url joins the base URL and path. path is already escaped (names in it
// went through url.PathEscape): it becomes the raw path as is, so a name is
// escaped once, never twice.
func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	raw := c.base.EscapedPath() + path
	if p, err := url.PathUnescape(raw); err == nil {
		u.Path, u.RawPath = p, raw
	} else {
		u.Path, u.RawPath = c.base.Path+path, ""
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (o *QueryOptions) values() url.Values {
	q := url.Values{}
	if o == nil {
		return q
	}
	for k, v := range o.Extra {
		q[k] = v
	}
	if o.Tenant != "" {
		q.Set("tenant", o.Tenant)
	}
	if o.Stale {
		q.Set("stale", "")
	}
	if o.WaitIndex > 0 {
		q.Set("index", strconv.FormatUint(o.WaitIndex, 10))
	}
	if o.WaitTime > 0 {
		q.Set("wait", o.WaitTime.String())
	}
	return q
}

func (o *WriteOptions) values() url.Values {
	q := url.Values{}
	if o == nil {
		return q
	}
	if o.Tenant != "" {
		q.Set("tenant", o.Tenant)
	}
	if o.CAS != nil {
		q.Set("cas", strconv.FormatUint(*o.CAS, 10))
	}
	return q
}

// do sends a request and decodes a 2xx JSON answer into out. Non-2xx
// answers become *apitypes.Error. While the hub has no leader (503) it sends
// the request again, within the client's RetryFor, when that is safe (see
// retryable).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) (*http.Response, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		payload = b
	}
	target := c.url(path, q)
	deadline := time.Now().Add(c.retryFor)
	retried := false
	for {
		resp, b, err := c.send(ctx, method, target, payload)
		if err != nil {
			return resp, err
		}
		if resp.StatusCode == http.StatusServiceUnavailable && retryable(method, resp.Header) {
			wait := retryAfter(resp.Header)
			if time.Now().Add(wait).Before(deadline) {
				if c.onRetry != nil {
					c.onRetry(answerError(resp, b))
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
					retried = true
					continue
				}
			}
		}
		if retried && method == http.MethodDelete && resp.StatusCode == http.StatusNotFound {
			// An earlier send may have deleted it before the leader was
			// lost: either way the object is gone, as asked.
			return resp, nil
		}
		if resp.StatusCode/100 != 2 {
			return resp, answerError(resp, b)
		}
		if out != nil && len(b) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				return resp, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
			}
		}
		return resp, nil
	}
}

// send makes one attempt and reads the whole answer.
func (c *Client) send(ctx context.Context, method, target string, payload []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp, nil, err
	}
	return resp, b, nil
}

// retryable says whether a 503 answer may be sent again: a read changes
// nothing; a write the hub marks as never submitted cannot apply twice; a
// delete sent twice deletes once (a later 404 means it is gone). Any other
// write may have been applied before the leader was lost, and the caller
// must look before writing again.
func retryable(method string, h http.Header) bool {
	switch {
	case method == http.MethodGet || method == http.MethodHead || method == http.MethodDelete:
		return true
	default:
		return h.Get("X-Wharf-Not-Submitted") == "true"
	}
}

// retryAfter is the wait the hub asks for, within [50 ms, 5 s].
func retryAfter(h http.Header) time.Duration {
	secs, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil {
		return time.Second
	}
	return min(max(time.Duration(secs)*time.Second, 50*time.Millisecond), 5*time.Second)
}

func answerError(resp *http.Response, b []byte) error {
	e := &apitypes.Error{}
	if json.Unmarshal(b, e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = resp.Status
		}
	}
	e.Status = resp.StatusCode
	return e
}

func meta(resp *http.Response) *QueryMeta {
	m := &QueryMeta{}
	if resp != nil {
		m.LastIndex, _ = strconv.ParseUint(resp.Header.Get("X-Wharf-Index"), 10, 64)
	}
	return m
}

func get[T any](ctx context.Context, c *Client, path string, o *QueryOptions) (T, *QueryMeta, error) {
	var out T
	resp, err := c.do(ctx, http.MethodGet, path, o.values(), nil, &out)
	return out, meta(resp), err
}

// Status returns the node's view of the cluster (no token needed).
func (c *Client) Status(ctx context.Context) (*apitypes.Status, error) {
	var st apitypes.Status
	_, err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &st)
	return &st, err
}

// Bootstrap hands out the first admin token; it fails with 409 afterwards.
func (c *Client) Bootstrap(ctx context.Context) (*apitypes.BootstrapResponse, error) {
	var b apitypes.BootstrapResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/bootstrap", nil, nil, &b)
	return &b, err
}
