package aliyun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"

	"github.com/wharf-platform/wharf/providers"
)

// codeKinds maps ECS error codes to Wharf's kinds. Codes ending in "."
// stand for every code with that prefix (Throttling.User,
// QuotaExceed.ElasticQuota, ...).
var codeKinds = map[string]providers.Kind{
	"Throttling":  providers.KindThrottled,
	"Throttling.": providers.KindThrottled,

	"QuotaExceed.":            providers.KindQuota,
	"QuotaExceeded.":          providers.KindQuota,
	"OperationDenied.NoStock": providers.KindQuota, // sold out in the zone: capacity, like a quota
	"Zone.NotOnSale":          providers.KindQuota,

	"InvalidAccessKeyId":    providers.KindBadCredentials,
	"InvalidAccessKeyId.":   providers.KindBadCredentials,
	"SignatureDoesNotMatch": providers.KindBadCredentials,
	"IncompleteSignature":   providers.KindBadCredentials,
	"InvalidSecurityToken.": providers.KindBadCredentials,
	"Forbidden":             providers.KindBadCredentials,
	"Forbidden.":            providers.KindBadCredentials,
	"NoPermission":          providers.KindBadCredentials,

	"InvalidInstanceId.NotFound": providers.KindNotFound,

	// A state that passes: an instance between two statuses, a nonce the
	// SDK's next attempt replaces, a clock the next signature may fix.
	"IncorrectInstanceStatus": providers.KindUnavailable,
	"SignatureNonceUsed":      providers.KindUnavailable,
	"InvalidTimeStamp.":       providers.KindUnavailable,
	"InternalError":           providers.KindUnavailable,
	"ServiceUnavailable":      providers.KindUnavailable,
	"UnknownError":            providers.KindUnavailable,

	"InvalidInstanceType.":        providers.KindBadRequest,
	"InvalidImageId.":             providers.KindBadRequest,
	"InvalidVSwitchId.":           providers.KindBadRequest,
	"InvalidSecurityGroupId.":     providers.KindBadRequest,
	"InvalidParameter":            providers.KindBadRequest,
	"InvalidParameter.":           providers.KindBadRequest,
	"MissingParameter":            providers.KindBadRequest,
	"IdempotentParameterMismatch": providers.KindBadRequest,
	"InvalidRegionId.":            providers.KindBadRequest,
}

// kindOf classifies an ECS error code, falling back on the HTTP status:
// a server error may pass, 401 is the credentials, any other client
// error needs an admin.
func kindOf(code string, status int) providers.Kind {
	if k, ok := codeKinds[code]; ok {
		return k
	}
	if i := strings.IndexByte(code, '.'); i > 0 {
		if k, ok := codeKinds[code[:i+1]]; ok {
			return k
		}
	}
	switch {
	case status >= 500 || status == 0:
		return providers.KindUnavailable
	case status == http.StatusUnauthorized:
		return providers.KindBadCredentials
	}
	return providers.KindBadRequest
}

// stringToSign is where ECS's SignatureDoesNotMatch message starts
// quoting the request (user data included): never passed on.
const stringToSign = "server string to sign is"

// mapError turns an SDK error into a *providers.Error (inside op's
// context) that keeps ECS's code and message. A cancelled ctx stays a
// plain error: the caller gave up, the cloud did not refuse. The SDK's
// own errors quote the request URL (with the user data and its join
// token), so only their code, message and cause are kept.
func mapError(ctx context.Context, op string, err error) error {
	switch cerr := ctx.Err(); {
	case errors.Is(cerr, context.Canceled):
		return fmt.Errorf("%s: %w", op, cerr)
	case cerr != nil:
		return fmt.Errorf("%s: %w", op, &providers.Error{Kind: providers.KindUnavailable, Message: "ECS did not answer in time: " + cerr.Error(), Err: cerr})
	}
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		code, msg := se.ErrorCode(), se.Message()
		if code == "" { // not ECS's answer (a proxy's page, say)
			msg = fmt.Sprintf("ECS answered HTTP %d without an error code", se.HttpStatus())
		}
		if i := strings.Index(strings.ToLower(msg), stringToSign); i >= 0 {
			msg = strings.TrimSpace(msg[:i])
		}
		return fmt.Errorf("%s: %w", op, &providers.Error{Kind: kindOf(code, se.HttpStatus()), Code: code, Message: msg})
	}
	// No answer: a timeout, a refused or dropped connection, a certificate
	// nobody trusts, or an answer that could not be read.
	cause := err
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) && ce.OriginError() != nil {
		cause = ce.OriginError()
	}
	msg := cause.Error()
	var ue *url.Error
	if errors.As(cause, &ue) {
		host := ""
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		cause, msg = ue.Err, ue.Op+" "+host+": "+ue.Err.Error()
	} else if ce != nil {
		cause, msg = nil, ce.ErrorCode()+": "+ce.Message()
	}
	return fmt.Errorf("%s: %w", op, &providers.Error{Kind: providers.KindUnavailable, Message: "ECS did not answer: " + msg, Err: cause})
}

// callTransport sends one call's requests under the call's context (as
// well as the SDK client's own timeout, which is the request's).
type callTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t *callTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	release := func() {
		stop()
		cancel(nil)
	}
	resp, err := t.base.RoundTrip(r.WithContext(ctx))
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// releaseBody ends a request's context once its body is closed.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
