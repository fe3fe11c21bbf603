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

// followRetry is the least time between two reads of one container's
// output with Follow: a stream that ends while the container still runs
// (the connection to the kubelet broke) is asked for again after it.
const followRetry = 500 * time.Millisecond

// Logs reads the Pod log API with timestamps, so that every line keeps
// the time it was written and a reader that resumes by time neither
// loses nor repeats lines. Kubernetes serves stdout and stderr as one
// stream: every line is reported as stdout. Since is applied to the
// nanosecond here (the API takes whole seconds). With Follow, Logs goes
// on across restarts of the container and ends, without error, once the
// Pod is deleted. It asks the API server only when the container has
// output to give: a Pod waiting for a node, its image or its next
// restart costs a watch event, not a request, however long it waits.
func (d *Driver) Logs(ctx context.Context, id string, opts driver.LogOptions, fn func(driver.LogLine) error) error {
	p := d.cached(id)
	if p == nil {
		return fmt.Errorf("kubernetes: %s: %w", id, driver.ErrNotFound)
	}
	ns, uid := p.Namespace, p.UID
	if !opts.Follow && !hasOutput(p) {
		return nil
	}
	since := opts.Since
	var last time.Time // the newest line delivered, when resuming
	// After a read, the container it followed (its id when it ran, ""
	// when it had ended) and when to ask again if that one still runs.
	read, again, first := "", time.Time{}, true
	for {
		if opts.Follow {
			q, ok := d.waitOutput(ctx, id, uid, first, read, again)
			if !ok {
				return ctx.Err()
			}
			if q == nil {
				return nil // deleted
			}
			read = runningContainer(q)
		}
		began := time.Now()
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
		// The stream ended: its container stopped, or the connection
		// broke. What comes next is a new container's output, or, when
		// the same one still runs after followRetry, more of its own.
		again, first = began.Add(followRetry), err != nil
		if err != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(again)):
			}
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

// hasOutput reports whether the Pod's container runs or has run: the
// log API has something to serve.
func hasOutput(p *corev1.Pod) bool {
	cs := containerStatus(p)
	return cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil)
}

// runningContainer returns the id of the Pod's container when it runs,
// "" otherwise.
func runningContainer(p *corev1.Pod) string {
	if cs := containerStatus(p); cs != nil && cs.State.Running != nil {
		return cs.ContainerID
	}
	return ""
}

// waitOutput waits until the Pod (that very one, uid) has output to
// read: first, as soon as its container runs or has run; later, once a
// container other than read runs, or read itself still runs at again.
// It returns nil and true when the Pod is gone, or being deleted with
// its container ended; false when ctx ended or the driver closed.
func (d *Driver) waitOutput(ctx context.Context, id string, uid types.UID, first bool, read string, again time.Time) (*corev1.Pod, bool) {
	for {
		ch := d.watch()
		p := d.cached(id)
		if p == nil || p.UID != uid || (p.DeletionTimestamp != nil && containerDone(p)) {
			return nil, true
		}
		cur := runningContainer(p)
		switch {
		case first && hasOutput(p):
			return p, true
		case !first && cur != "" && (cur != read || !time.Now().Before(again)):
			return p, true
		}
		var retry <-chan time.Time
		var t *time.Timer
		if !first && cur != "" && cur == read {
			t = time.NewTimer(time.Until(again))
			retry = t.C
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-d.stop:
			return nil, false
		case <-ch:
		case <-retry:
		}
		if t != nil {
			t.Stop()
		}
	}
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
