package kubernetes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wharf-platform/wharf/agent/driver"
)

// followRetry is how long Logs with Follow waits before it asks again for
// the output of a container that is not running (starting, or restarted
// by its kubelet), unless the Pod changes first.
const followRetry = 500 * time.Millisecond

// Logs reads the Pod log API with timestamps, so that every line keeps
// the time it was written and a reader that resumes by time neither
// loses nor repeats lines. Kubernetes serves stdout and stderr as one
// stream: every line is reported as stdout. Since is applied to the
// nanosecond here (the API takes whole seconds). With Follow, Logs goes
// on across restarts of the container and ends, without error, once the
// Pod is deleted.
func (d *Driver) Logs(ctx context.Context, id string, opts driver.LogOptions, fn func(driver.LogLine) error) error {
	p := d.cached(id)
	if p == nil {
		return fmt.Errorf("kubernetes: %s: %w", id, driver.ErrNotFound)
	}
	ns, uid := p.Namespace, p.UID
	since := opts.Since
	var last time.Time // the newest line delivered, when resuming
	for {
		n, err := d.readLogs(ctx, ns, id, opts.Follow, since, last, func(l driver.LogLine) error {
			last = l.Time
			return fn(l)
		})
		if err != nil {
			var stop *fnError
			if errors.As(err, &stop) {
				return stop.err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if apierrors.IsNotFound(err) && n == 0 && last.IsZero() && !opts.Follow {
				return fmt.Errorf("kubernetes: %s: %w", id, driver.ErrNotFound)
			}
		}
		if !opts.Follow {
			if err != nil && !waiting(err) {
				return err
			}
			return nil
		}
		if !last.IsZero() {
			since = last
		}
		// The stream ended: the container stopped. Read on while the same
		// Pod exists and is not being deleted.
		if p, ok := d.waitChange(ctx, id, uid, followRetry); !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		} else if p.DeletionTimestamp != nil && containerDone(p) {
			return nil
		}
	}
}

// fnError carries the error of the caller's fn out of readLogs.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// waiting reports whether err says the container has not started yet:
// no lines, not a failure.
func waiting(err error) bool {
	return apierrors.IsBadRequest(err) && strings.Contains(err.Error(), "waiting to start")
}

// containerDone reports whether the Pod's container has ended and will
// not run again.
func containerDone(p *corev1.Pod) bool {
	cs := containerStatus(p)
	return cs == nil || cs.State.Running == nil
}

// waitChange waits for a change of the Pod or until wait passes; false
// when the Pod (that very one) is gone or ctx ended.
func (d *Driver) waitChange(ctx context.Context, id string, uid types.UID, wait time.Duration) (*corev1.Pod, bool) {
	ch := d.watch()
	if p := d.cached(id); p == nil || p.UID != uid {
		return nil, false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, false
	case <-ch:
	case <-t.C:
	}
	p := d.cached(id)
	if p == nil || p.UID != uid {
		return nil, false
	}
	return p, true
}

// readLogs reads one log stream of the Pod's container: lines before
// since, and when resuming lines not after last, are skipped. It returns
// how many lines it delivered.
func (d *Driver) readLogs(ctx context.Context, ns, name string, follow bool, since, last time.Time, fn func(driver.LogLine) error) (int, error) {
	po := &corev1.PodLogOptions{Container: containerName, Follow: follow, Timestamps: true}
	if !since.IsZero() {
		t := metav1.NewTime(since.Truncate(time.Second))
		po.SinceTime = &t
	}
	rc, err := d.cs.CoreV1().Pods(ns).GetLogs(name, po).Stream(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	// Closing the stream is what ends a blocked read when ctx ends.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	br := bufio.NewReaderSize(rc, 64<<10)
	n := 0
	for {
		s, err := br.ReadString('\n')
		if s != "" && (err == nil || err == io.EOF) {
			l, ok := parseLine(s)
			if ok && !l.Time.Before(since) && (last.IsZero() || l.Time.After(last)) {
				if ferr := fn(l); ferr != nil {
					return n, &fnError{ferr}
				}
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// parseLine splits "TIMESTAMP TEXT\n", as the log API writes it with
// timestamps, into a line. Text with a carriage return at its end (a
// program writing CRLF) loses it.
func parseLine(s string) (driver.LogLine, bool) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	ts, text, _ := strings.Cut(s, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return driver.LogLine{}, false
	}
	return driver.LogLine{Time: t, Stream: "stdout", Line: text}, true
}
