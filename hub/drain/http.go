package drain

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxErrorBody is how much of an error response ends up in an error.
const maxErrorBody = 512

// poster sends request bodies to one HTTP endpoint; the Loki and
// Elasticsearch senders share it.
type poster struct {
	url         string // without userinfo, so that errors never show a password
	user        *url.Userinfo
	contentType string
	transport   *http.Transport
	client      *http.Client
	o           Options
}

func newPoster(t Target, path, contentType string, o Options) *poster {
	u := *t.URL
	u.User = nil
	if path != "" {
		u.Path, u.RawPath = path, ""
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.TLSConfig != nil {
		tr.TLSClientConfig = o.TLSConfig.Clone()
	}
	return &poster{
		url:         u.String(),
		user:        t.URL.User,
		contentType: contentType,
		transport:   tr,
		client:      &http.Client{Transport: tr},
		o:           o,
	}
}

// post sends body and returns the response body of a 2xx answer. A 429 or
// 5xx answer, or no answer, is a temporary error; any other status is
// permanent.
func (p *poster) post(ctx context.Context, body []byte, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", p.contentType)
	if p.user != nil {
		pw, _ := p.user.Password()
		req.SetBasicAuth(p.user.Username(), pw)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err // *url.Error naming p.url, which has no password
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
		if err != nil {
			return nil, fmt.Errorf("read response of %s: %w", p.url, err)
		}
		return b, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
	msg := fmt.Sprintf("post %s: %s", p.url, resp.Status)
	if s := snippet(b); s != "" {
		msg += ": " + s
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return nil, fmt.Errorf("%s", msg)
	}
	return nil, permanent("%s", msg)
}

func (p *poster) close() error {
	p.transport.CloseIdleConnections()
	return nil
}

// snippet makes a response body (at most maxErrorBody bytes) fit for an
// error message.
func snippet(b []byte) string {
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}
