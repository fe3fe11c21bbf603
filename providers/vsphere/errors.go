package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/wharf-platform/wharf/providers"
)

// faultKinds maps vSphere fault types to Wharf's kinds; a fault not
// listed is a bad request (an admin's problem) unless it is transient.
var faultKinds = map[string]providers.Kind{
	"InvalidLogin":     providers.KindBadCredentials,
	"NotAuthenticated": providers.KindBadCredentials,
	"NoPermission":     providers.KindBadCredentials,
	"NoPermissionOnAD": providers.KindBadCredentials,

	"ManagedObjectNotFound": providers.KindNotFound,

	"InsufficientResourcesFault":              providers.KindQuota,
	"InsufficientHostCapacityFault":           providers.KindQuota,
	"InsufficientCpuResourcesFault":           providers.KindQuota,
	"InsufficientMemoryResourcesFault":        providers.KindQuota,
	"InsufficientStorageSpace":                providers.KindQuota,
	"NoDiskSpace":                             providers.KindQuota,
	"OutOfBounds":                             providers.KindQuota,
	"LicenseRestricted":                       providers.KindQuota,
	"NumVirtualCpusExceedsLimit":              providers.KindQuota,
	"VmLimitLicense":                          providers.KindQuota,
	"InsufficientNetworkResourcePoolCapacity": providers.KindQuota,

	"TaskInProgress":      providers.KindUnavailable,
	"HostCommunication":   providers.KindUnavailable,
	"HostNotConnected":    providers.KindUnavailable,
	"Timedout":            providers.KindUnavailable,
	"ConcurrentAccess":    providers.KindUnavailable,
	"SystemError":         providers.KindUnavailable,
	"RequestCanceled":     providers.KindUnavailable,
	"RuntimeFault":        providers.KindUnavailable,
	"ServiceUnavailable":  providers.KindUnavailable,
	"ResourceInUse":       providers.KindUnavailable,
	"VAppTaskInProgress":  providers.KindUnavailable,
	"InvalidState":        providers.KindUnavailable,
	"CannotAccessNetwork": providers.KindUnavailable,
}

// faultName is the type name of a vSphere fault (InvalidLogin, ...).
func faultName(f types.BaseMethodFault) string {
	t := reflect.TypeOf(f)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.Name()
}

// isFault tells whether err carries a fault of target's type.
func isFault(err error, target types.BaseMethodFault) bool {
	return err != nil && fault.Is(err, target)
}

// mapError turns a govmomi error into a *providers.Error (inside op's
// context) that keeps the fault's name and message. An error that is
// already a *providers.Error passes; a cancelled ctx stays a plain error.
func mapError(op string, err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	name, msg := "", ""
	fault.In(err, func(f types.BaseMethodFault, localized string, _ []types.LocalizableMessage) bool {
		name, msg = faultName(f), localized
		return true // the outermost fault names it
	})
	if name != "" {
		if msg == "" {
			msg = err.Error()
		}
		kind, ok := faultKinds[name]
		if !ok {
			kind = providers.KindBadRequest
		}
		return fmt.Errorf("%s: %w", op, &providers.Error{Kind: kind, Code: name, Message: msg, Err: err})
	}
	// An HTTP status instead of a SOAP answer: a proxy or a load
	// balancer in front of vCenter.
	if status := httpStatus(err); status != 0 {
		kind := providers.KindUnavailable
		switch {
		case status == 429:
			kind = providers.KindThrottled
		case status == 401 || status == 403:
			kind = providers.KindBadCredentials
		case status < 500:
			kind = providers.KindBadRequest
		}
		return fmt.Errorf("%s: %w", op, &providers.Error{Kind: kind, Code: strconv.Itoa(status), Message: err.Error(), Err: err})
	}
	return fmt.Errorf("%s: %w", op, &providers.Error{
		Kind:    providers.KindUnavailable,
		Message: "vCenter did not answer: " + err.Error(),
		Err:     err,
	})
}

// httpStatus reads the status govmomi reports for an answer that was
// neither 200 nor a SOAP fault ("429 Too Many Requests"); 0 for none.
func httpStatus(err error) int {
	var ue *url.Error
	if !errors.As(err, &ue) || ue.Err == nil {
		return 0
	}
	msg := ue.Err.Error()
	if len(msg) < 3 || (len(msg) > 3 && msg[3] != ' ') || strings.Contains(ue.Err.Error(), ":") {
		return 0
	}
	n, perr := strconv.Atoi(msg[:3])
	if perr != nil || n < 100 || n > 599 {
		return 0
	}
	return n
}
