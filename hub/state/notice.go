package state

import (
	"fmt"
	"slices"
	"time"
)

// notice tells an app's tenant that instance i of it reports a trouble
// (its Reason): one event per app version and reason, however many
// instances report it and however often their agents retry. The event's
// subject is "tenant/app", which the tenant reads; its message names the
// app, the version and what the agent saw (for an image that cannot be
// pulled, the registry's error).
func (w *writer) notice(i *Instance, at time.Time) *Error {
	a, e := w.app(i.Tenant, i.App)
	if e != nil || a == nil {
		return e
	}
	k := Notice{Version: i.Version, Reason: i.Reason}
	if slices.Contains(a.Noticed, k) {
		return nil
	}
	// Like Pending, this is status, not spec: the app's modify index (its
	// CAS token) stays.
	n := a.Copy()
	n.Noticed = append(n.Noticed, k)
	if len(n.Noticed) > maxNoticed {
		n.Noticed = n.Noticed[len(n.Noticed)-maxNoticed:]
	}
	if e := w.insert(TableApps, n); e != nil {
		return e
	}
	if e := w.noteAppStatus(a.Tenant, a.Name); e != nil {
		return e
	}
	var what string
	switch i.Reason {
	case ReasonImagePull:
		image := ""
		if v, err := w.snap().AppVersion(nil, i.Tenant, i.App, i.Version); err != nil {
			return Errorf(KindInternal, "%v", err)
		} else if v != nil {
			image = " " + v.Spec.Image
		}
		what = fmt.Sprintf("the image%s cannot be pulled", image)
	case ReasonStartFailed:
		what = "its instances cannot start"
	case ReasonCrashLoop:
		what = "its instances keep exiting (restarts back off)"
	case ReasonUnhealthy:
		what = "its instances fail their health check"
	default:
		what = i.Reason
	}
	msg := fmt.Sprintf("app %s version %d: %s", i.App, i.Version, what)
	if i.Message != "" {
		msg += ": " + i.Message
	}
	return w.event(Event{Time: at, Type: "app." + i.Reason, Subject: i.Tenant + "/" + i.App, Message: msg})
}
