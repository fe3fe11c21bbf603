package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

var kindStatus = map[state.Kind]int{
	state.KindInternal:    http.StatusInternalServerError,
	state.KindInvalid:     http.StatusBadRequest,
	state.KindNotFound:    http.StatusNotFound,
	state.KindConflict:    http.StatusConflict,
	state.KindRefused:     http.StatusUnprocessableEntity,
	state.KindUnavailable: http.StatusServiceUnavailable,
}

// toAPIError maps any error to the API's error shape.
func toAPIError(err error) *apitypes.Error {
	var ae *apitypes.Error
	if errors.As(err, &ae) {
		return ae
	}
	var se *state.Error
	if errors.As(err, &se) {
		code, ok := kindStatus[se.Kind]
		if !ok {
			code = http.StatusInternalServerError
		}
		msg := se.Msg
		if se.Kind == state.KindUnavailable {
			msg = err.Error()
		}
		return &apitypes.Error{Status: code, Message: msg, Field: se.Field}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "timed out waiting for the cluster; retry"}
	}
	return &apitypes.Error{Status: http.StatusInternalServerError, Message: err.Error()}
}

// statusClientClosed answers a request whose client went away before its
// answer was ready (nginx's 499): nobody reads it, and it is not the
// server's failure, so it is neither logged as one nor counted as a 5xx.
const statusClientClosed = 499

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		ae = &apitypes.Error{Status: statusClientClosed, Message: "the client closed the request"}
		s.log.Debug("client closed the request", "method", r.Method, "path", r.URL.Path)
	}
	if ae.Status >= 500 {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", ae.Status, "err", err)
	}
	if ae.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
		var se *state.Error
		if errors.As(err, &se) && se.NotSubmitted {
			// The write never reached a leader: retrying cannot apply it twice.
			w.Header().Set("X-Wharf-Not-Submitted", "true")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	json.NewEncoder(w).Encode(ae)
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

func errForbidden(msg string) error {
	return &apitypes.Error{Status: http.StatusForbidden, Message: msg}
}

func errNotFound(what, name string) error {
	return &apitypes.Error{Status: http.StatusNotFound, Message: what + " " + name + " not found"}
}
