package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// maxGrep bounds ?grep=.
const maxGrep = 1024

// appLogs serves GET /v1/apps/{name}/logs?since=DURATION[&follow=1]
// [&grep=TEXT][&instance=ID][&limit=N]: NDJSON in time order, each line
// {"time", "instance", "stream", "seq", "line"}; with follow, new lines
// as they arrive until the client goes away.
func (s *Server) appLogs(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, name, err := s.existingApp(r, p)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	q := apitypes.LogQuery{Tenant: tenant, App: name, Instance: v.Get("instance"), Grep: v.Get("grep")}
	if d := v.Get("since"); d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return apitypes.FieldError("since", "since must be a positive duration such as 10m or 24h")
		}
		q.Since = s.cfg.Now().Add(-dur)
	}
	if len(q.Grep) > maxGrep {
		return apitypes.FieldError("grep", "grep is longer than 1024 bytes")
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 || n > apitypes.MaxLogLimit {
			return apitypes.FieldError("limit", "limit must be between 1 and 100000")
		}
		q.Limit = n
	}
	switch v.Get("follow") {
	case "", "0", "false":
	case "1", "true":
		q.Follow = true
	default:
		return apitypes.FieldError("follow", "follow must be 1 or 0")
	}
	if s.cfg.Logs == nil {
		return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "this hub node keeps no logs"}
	}
	started, truncated := false, false
	err = s.cfg.Logs.Read(r.Context(), q, func(lines []apitypes.LogLine, cut bool) error {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Trailer", apitypes.LogsTruncatedTrailer)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		truncated = truncated || cut
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return nil
	})
	if err != nil && !started {
		return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "logs: " + err.Error()}
	}
	if truncated {
		w.Header().Set(apitypes.LogsTruncatedTrailer, "older matching lines were left out: narrow the query (--since, --grep, --instance, --tail)")
	}
	return nil
}
