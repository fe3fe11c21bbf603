package apitypes

import (
	"errors"
	"fmt"
)

// Error is the body of every non-2xx API response: {"error": "...", "field": "..."}.
// Status is the HTTP status code; it is not part of the JSON body.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (field %q)", e.Message, e.Field)
	}
	return e.Message
}

// FieldError returns a 400 error about one field of a request.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Status: 400, Field: field, Message: fmt.Sprintf(format, args...)}
}

// StatusOf returns the HTTP status carried by err, or 0 if err is not an *Error.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
