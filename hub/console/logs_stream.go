package console

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

// The app page's followed log view: GET /ui/apps/{tenant}/{app}/logs/stream
// is a server-sent event stream (text/event-stream) that follows the app's
// lines through the node's own API (GET /v1/apps/{name}/logs?follow=1,
// the read `wharf logs -f` does) with the session's token, so a role sees
// in the console exactly the lines the API would give it.
//
// Events, in order:
//
//	event: reset   data: {}      the view starts over (every connection,
//	                             reconnects too, first resends the tail)
//	data: {time, instance, stream, seq, line}   one line, as the API's NDJSON
//	event: end     data: REASON  the stream is over (signed out): do not
//	                             reconnect
//
// and a comment every refresh period, which keeps proxies from closing an
// idle stream and lets the server notice a client that went away.
//
// Query: grep (the API's substring filter) and instance; both optional.

// streamTail is how many of the newest matching lines a stream starts with.
const streamTail = logLines

// maxGrepLen is the longest grep the API takes.
const maxGrepLen = 1024

// logStream serves the followed log view of one app.
func (c *Console) logStream(w http.ResponseWriter, r *http.Request) {
	s := c.session(r)
	if s == nil {
		// An EventSource cannot follow a redirect to a form: the script
		// sees the stream fail and the page's next live table refresh
		// (which answers 401) takes the browser to the login page.
		http.Error(w, "signed out", http.StatusUnauthorized)
		return
	}
	tenant, name := r.PathValue("tenant"), r.PathValue("app")
	q := r.URL.Query()
	grep, instance := q.Get("grep"), q.Get("instance")
	if len(grep) > maxGrepLen {
		http.Error(w, "grep is longer than 1024 bytes", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	body, err := c.followLogs(ctx, s, tenant, name, grep, instance)
	if err != nil {
		http.Error(w, errText(err), statusOf(err))
		return
	}
	defer body.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	out := bufio.NewWriterSize(w, 32<<10)
	if _, err := io.WriteString(out, "retry: 3000\nevent: reset\ndata: {}\n\n"); err != nil {
		return
	}
	if out.Flush() != nil || rc.Flush() != nil {
		return
	}
	c.log.Debug("console: log stream opened", "tenant", tenant, "app", name, "session_user", s.Name)

	// The reader hands over whole NDJSON lines; the writer below is the
	// only one writing to w.
	lines := make(chan []byte, 256)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		readErr <- readLines(ctx, body, lines)
	}()
	tick := time.NewTicker(c.cfg.Refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-lines:
			if !ok {
				// The API ended the follow (the app was deleted, the node
				// is stopping): the browser reconnects and starts over.
				if err := <-readErr; err != nil && ctx.Err() == nil {
					c.log.Debug("console: log stream ended", "tenant", tenant, "app", name, "err", err)
				}
				return
			}
			if err := writeEvent(out, l); err != nil {
				return
			}
			// Write out what arrived together, then flush once.
			for more := true; more; {
				select {
				case l, ok := <-lines:
					if !ok {
						more = false
						break
					}
					if err := writeEvent(out, l); err != nil {
						return
					}
				default:
					more = false
				}
			}
			if out.Flush() != nil || rc.Flush() != nil {
				return
			}
		case <-tick.C:
			if !c.sessions.live(s.ID) {
				_, _ = io.WriteString(out, "event: end\ndata: signed out\n\n")
				_ = out.Flush()
				_ = rc.Flush()
				return
			}
			if _, err := io.WriteString(out, ": keepalive\n\n"); err != nil {
				return
			}
			if out.Flush() != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// followLogs opens the API's follow of an app's lines and returns its
// NDJSON body, or the API's refusal as an *apitypes.Error.
func (c *Console) followLogs(ctx context.Context, s *session, tenant, name, grep, instance string) (io.ReadCloser, error) {
	v := url.Values{"follow": {"1"}, "limit": {strconv.Itoa(streamTail)}}
	if tenant != "" {
		v.Set("tenant", tenant)
	}
	if grep != "" {
		v.Set("grep", grep)
	}
	if instance != "" {
		v.Set("instance", instance)
	}
	u := "http://console.invalid/v1/apps/" + url.PathEscape(name) + "/logs?" + v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("follow logs: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		e := &apitypes.Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return nil, e
	}
	return resp.Body, nil
}

// maxLine bounds one NDJSON line of the API: a 16 KiB piece escaped
// (6 bytes a byte at most) and its fields.
const maxLine = 128 << 10

// readLines sends each line of r to out until r ends or ctx does.
func readLines(ctx context.Context, r io.Reader, out chan<- []byte) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		l, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any line the API writes: skip it whole.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(l) > 1 {
			cp := make([]byte, len(l)-1)
			copy(cp, l[:len(l)-1])
			select {
			case out <- cp:
			case <-ctx.Done():
				return nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// writeEvent writes one line as an SSE message. The API's NDJSON lines
// are JSON with newlines escaped, so one data field holds each.
func writeEvent(w *bufio.Writer, line []byte) error {
	if _, err := w.WriteString("data: "); err != nil {
		return err
	}
	if _, err := w.Write(line); err != nil {
		return err
	}
	_, err := w.WriteString("\n\n")
	return err
}

// logFilter is the log view's filters, from the page's query (the filter
// form is a GET form, so it works without a script).
type logFilter struct {
	Grep, Instance string
}

func readLogFilter(r *http.Request) logFilter {
	q := r.URL.Query()
	// Too long a grep is the API's to refuse: the view says why.
	return logFilter{Grep: q.Get("grep"), Instance: q.Get("instance")}
}

// Query is the filters as a query string ("" without any), for the
// stream's and the fragment's URLs.
func (f logFilter) Query() string {
	v := url.Values{}
	if f.Grep != "" {
		v.Set("grep", f.Grep)
	}
	if f.Instance != "" {
		v.Set("instance", f.Instance)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
