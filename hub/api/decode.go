package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// decodeBody reads a JSON request body into v strictly: size-limited, no
// unknown fields, no trailing data. Errors name the field when they can.
func decodeBody(r *http.Request, limit int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return &apitypes.Error{Status: http.StatusBadRequest, Message: "read body: " + err.Error()}
	}
	if int64(len(b)) > limit {
		return &apitypes.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
	}
	return decodeJSON(b, v)
}

func decodeJSON(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return &apitypes.Error{Status: http.StatusBadRequest, Message: "request body is empty; send a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apitypes.Error{Status: http.StatusBadRequest, Message: "unexpected data after the JSON object"}
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return apitypes.FieldError(te.Field, "field %q must be %s, not %s", te.Field, te.Type.String(), te.Value)
	case errors.As(err, &se):
		return &apitypes.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apitypes.FieldError(f, "unknown field %q", f)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &apitypes.Error{Status: http.StatusBadRequest, Message: "malformed JSON: unexpected end of input"}
	}
	return &apitypes.Error{Status: http.StatusBadRequest, Message: "malformed JSON: " + err.Error()}
}
