package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/wharf-platform/wharf/providers"
)

// codeKinds maps EC2 error codes to Wharf's kinds. Codes ending in "."
// stand for every code with that prefix (InvalidAMIID.NotFound,
// InvalidAMIID.Malformed, ...).
var codeKinds = map[string]providers.Kind{
	"RequestLimitExceeded":   providers.KindThrottled,
	"Throttling":             providers.KindThrottled,
	"ThrottlingException":    providers.KindThrottled,
	"EC2ThrottledException":  providers.KindThrottled,
	"RequestThrottled":       providers.KindThrottled,
	"BandwidthLimitExceeded": providers.KindThrottled,

	"InstanceLimitExceeded":             providers.KindQuota,
	"VcpuLimitExceeded":                 providers.KindQuota,
	"InsufficientInstanceCapacity":      providers.KindQuota,
	"InsufficientFreeAddressesInSubnet": providers.KindQuota,
	"MaxSpotInstanceCountExceeded":      providers.KindQuota,

	"AuthFailure":                providers.KindBadCredentials,
	"UnauthorizedOperation":      providers.KindBadCredentials,
	"InvalidClientTokenId":       providers.KindBadCredentials,
	"SignatureDoesNotMatch":      providers.KindBadCredentials,
	"IncompleteSignature":        providers.KindBadCredentials,
	"MissingAuthenticationToken": providers.KindBadCredentials,
	"OptInRequired":              providers.KindBadCredentials,
	"Blocked":                    providers.KindBadCredentials,

	"InvalidInstanceID.NotFound": providers.KindNotFound,

	"InvalidParameterValue":       providers.KindBadRequest,
	"InvalidParameterCombination": providers.KindBadRequest,
	"InvalidParameter":            providers.KindBadRequest,
	"MissingParameter":            providers.KindBadRequest,
	"IdempotentParameterMismatch": providers.KindBadRequest,
	"InvalidInstanceType":         providers.KindBadRequest,
	"InvalidKeyPair.":             providers.KindBadRequest,
	"InvalidAMIID.":               providers.KindBadRequest,
	"InvalidSubnetID.":            providers.KindBadRequest,
	"InvalidSubnet.":              providers.KindBadRequest,
	"InvalidGroup.":               providers.KindBadRequest,
	"InvalidGroupId.":             providers.KindBadRequest,
	"InvalidInstanceID.":          providers.KindBadRequest,
	"Unsupported":                 providers.KindBadRequest,
	"UnsupportedOperation":        providers.KindBadRequest,
	"TagLimitExceeded":            providers.KindBadRequest,

	"InternalError":      providers.KindUnavailable,
	"InternalFailure":    providers.KindUnavailable,
	"Unavailable":        providers.KindUnavailable,
	"ServiceUnavailable": providers.KindUnavailable,
	"RequestExpired":     providers.KindUnavailable, // clock skew: the SDK corrects it on a retry
}

// kindOf classifies an EC2 error code, falling back on the HTTP status:
// a server error may pass, a client error needs an admin.
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
	case status == 401 || status == 403:
		return providers.KindBadCredentials
	}
	return providers.KindBadRequest
}

// mapError turns an SDK error into a *providers.Error (inside op's
// context) that keeps EC2's code and message. A cancelled ctx stays a
// plain error: the caller gave up, the cloud did not refuse.
func mapError(op string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		status := 0
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		return fmt.Errorf("%s: %w", op, &providers.Error{
			Kind:    kindOf(api.ErrorCode(), status),
			Code:    api.ErrorCode(),
			Message: api.ErrorMessage(),
			Err:     err,
		})
	}
	// No answer: a timeout, a refused or dropped connection, or an
	// answer that could not be read.
	return fmt.Errorf("%s: %w", op, &providers.Error{
		Kind:    providers.KindUnavailable,
		Message: "EC2 did not answer: " + err.Error(),
		Err:     err,
	})
}
