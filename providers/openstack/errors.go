package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/wharf-platform/wharf/providers"
)

// kindOf classifies an answer by its HTTP status and, where the status
// is shared, by Nova's message: a 403 or 413 that says "quota" is a
// quota, not a refusal of the credentials or a rate limit.
func kindOf(status int, message string) providers.Kind {
	quota := strings.Contains(strings.ToLower(message), "quota")
	switch {
	case status == http.StatusUnauthorized:
		return providers.KindBadCredentials
	case status == http.StatusForbidden && quota:
		return providers.KindQuota
	case status == http.StatusForbidden:
		return providers.KindBadCredentials
	case status == http.StatusRequestEntityTooLarge || status == http.StatusTooManyRequests:
		if quota {
			return providers.KindQuota
		}
		return providers.KindThrottled
	case status == http.StatusNotFound:
		return providers.KindNotFound
	case status == http.StatusConflict:
		return providers.KindUnavailable // the server is busy (a task state): later
	case status >= 500 || status == 0:
		return providers.KindUnavailable
	}
	return providers.KindBadRequest
}

// mapError turns a gophercloud error into a *providers.Error (inside
// op's context) that keeps the cloud's error name and message. An error
// that is already a *providers.Error passes; a cancelled ctx stays a
// plain error: the caller gave up, the cloud did not refuse.
func mapError(op string, err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	// The token expired and a new one was refused: the new refusal is
	// what counts (a changed password).
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) && reauth.ErrReauth != nil {
		return mapError(op, reauth.ErrReauth)
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		name, msg := errorBody(code.Body)
		if name == "" {
			name = strconv.Itoa(code.Actual)
		}
		if msg == "" {
			msg = http.StatusText(code.Actual)
		}
		return fmt.Errorf("%s: %w", op, &providers.Error{Kind: kindOf(code.Actual, msg), Code: name, Message: msg, Err: err})
	}
	// No answer: a timeout, a refused or dropped connection, or an
	// answer that could not be read.
	return fmt.Errorf("%s: %w", op, &providers.Error{
		Kind:    providers.KindUnavailable,
		Message: "OpenStack did not answer: " + err.Error(),
		Err:     err,
	})
}

// errorBody reads the name and message of an OpenStack error answer:
// Nova's {"<name>": {"code", "message"}}, Keystone's {"error": {"code",
// "message", "title"}}, Neutron's {"NeutronError": {"type", "message"}}.
func errorBody(body []byte) (name, message string) {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return "", strings.TrimSpace(truncate(string(body), 512))
	}
	for k, raw := range doc {
		var e struct {
			Message string `json:"message"`
			Title   string `json:"title"`
			Type    string `json:"type"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Message == "" {
			continue
		}
		switch {
		case k == "error" && e.Title != "":
			k = e.Title
		case k == "NeutronError" && e.Type != "":
			k = e.Type
		}
		return k, e.Message
	}
	return "", ""
}

// retryAfter is the wait a throttled answer asked for (Retry-After in
// seconds), 0 when it asked none.
func retryAfter(err error) time.Duration {
	var code gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &code) || code.ResponseHeader == nil {
		return 0
	}
	n, perr := strconv.Atoi(strings.TrimSpace(code.ResponseHeader.Get("Retry-After")))
	if perr != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
