package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// explain turns an error of a request into what the user should read: the
// API's own vocabulary (query parameters, headers) becomes the CLI's flags,
// environment variables and commands.
func (e *env) explain(err error) string {
	var ae *apitypes.Error
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusBadRequest && ae.Field == "tenant":
			return "name the tenant with --tenant NAME (an admin token acts on one tenant's objects at a time)"
		case ae.Status == http.StatusUnauthorized && !e.tokenSet:
			return "no API token: set WHARF_TOKEN, pass --token, or run `wharf login`"
		case ae.Status == http.StatusUnauthorized:
			return fmt.Sprintf("the hub at %s refused the token (%s): set WHARF_TOKEN or run `wharf login` with a valid one", e.addrUsed, ae.Message)
		case ae.Field != "":
			return fmt.Sprintf("%s (field %s)", ae.Message, ae.Field)
		}
		return ae.Message
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) && errors.As(err, &oe) {
		cause := oe.Err.Error()
		if errors.Is(err, syscall.ECONNREFUSED) {
			cause = "connection refused"
		}
		msg := fmt.Sprintf("cannot reach the hub at %s: %s (is it running? `make run` starts one)", e.addrUsed, cause)
		if e.addrDefault {
			msg += "; no hub address is configured: set WHARF_ADDR, pass --addr, or run `wharf login`"
		}
		return msg
	}
	return err.Error()
}

// retrying tells the user why a command pauses: the hub has no leader
// for a moment and the client sends the request again. Each reason is
// printed once.
func (e *env) retrying(err error) {
	if e.onRetry != nil {
		e.onRetry(err)
		return
	}
	msg := e.explain(err)
	if msg == e.lastRetry {
		return
	}
	e.lastRetry = msg
	fmt.Fprintf(e.stderr, "wharf: retrying: %s\n", msg)
}
