package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// LogOptions select an app's lines.
type LogOptions struct {
	Tenant   string
	Since    time.Duration // zero: all retained
	Follow   bool
	Instance string
	Grep     string
	Limit    int
}

// Logs reads an app's lines in time order and calls fn for each; with
// Follow it goes on until ctx ends (then returns nil) or fn fails.
func (a *Apps) Logs(ctx context.Context, name string, o LogOptions, fn func(apitypes.LogLine) error) error {
	q := url.Values{}
	if o.Tenant != "" {
		q.Set("tenant", o.Tenant)
	}
	if o.Since > 0 {
		q.Set("since", o.Since.String())
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Instance != "" {
		q.Set("instance", o.Instance)
	}
	if o.Grep != "" {
		q.Set("grep", o.Grep)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.c.url(appPath(name, "/logs"), q), nil)
	if err != nil {
		return err
	}
	if a.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.c.token)
	}
	resp, err := a.c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && o.Follow {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &apitypes.Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		var l apitypes.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("decode log line: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && !(o.Follow && ctx.Err() != nil) {
		return err
	}
	if v := resp.Trailer.Get(apitypes.LogsTruncatedTrailer); v != "" {
		return fmt.Errorf("%w: %s", ErrLogsTruncated, v)
	}
	return nil
}

// ErrLogsTruncated is returned by Apps.Logs, after every line was handed
// over, when older matching lines were left out.
var ErrLogsTruncated = errors.New("logs truncated")

// LogDrains is an app's log drains endpoint.
type LogDrains struct{ c *Client }

// LogDrains returns the log drains endpoint.
func (c *Client) LogDrains() *LogDrains { return &LogDrains{c} }

// Add adds a drain to an app.
func (d *LogDrains) Add(ctx context.Context, app, rawURL string, o *WriteOptions) (*apitypes.LogDrain, error) {
	var out apitypes.LogDrain
	_, err := d.c.do(ctx, http.MethodPost, appPath(app, "/log-drains"), o.values(), apitypes.LogDrainRequest{URL: rawURL}, &out)
	return &out, err
}

// List lists an app's drains.
func (d *LogDrains) List(ctx context.Context, app string, o *QueryOptions) ([]apitypes.LogDrain, *QueryMeta, error) {
	return get[[]apitypes.LogDrain](ctx, d.c, appPath(app, "/log-drains"), o)
}

// Delete removes a drain.
func (d *LogDrains) Delete(ctx context.Context, app, id string, o *WriteOptions) error {
	_, err := d.c.do(ctx, http.MethodDelete, appPath(app, "/log-drains/"+url.PathEscape(id)), o.values(), nil, nil)
	return err
}

// Alerts is the alert rules endpoint.
type Alerts struct{ c *Client }

// Alerts returns the alert rules endpoint.
func (c *Client) Alerts() *Alerts { return &Alerts{c} }

// Add adds a rule.
func (a *Alerts) Add(ctx context.Context, r apitypes.AlertRule, o *WriteOptions) (*apitypes.AlertRule, error) {
	var out apitypes.AlertRule
	_, err := a.c.do(ctx, http.MethodPost, "/v1/alerts", o.values(), r, &out)
	return &out, err
}

// List lists the rules (with their state).
func (a *Alerts) List(ctx context.Context, o *QueryOptions) ([]apitypes.AlertRule, *QueryMeta, error) {
	return get[[]apitypes.AlertRule](ctx, a.c, "/v1/alerts", o)
}

// Delete removes a rule.
func (a *Alerts) Delete(ctx context.Context, id string, o *WriteOptions) error {
	_, err := a.c.do(ctx, http.MethodDelete, "/v1/alerts/"+url.PathEscape(id), o.values(), nil, nil)
	return err
}
