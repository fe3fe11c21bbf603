package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver"
)

// followPoll is how often a follower whose stream ended (the container
// stopped) checks whether the container was removed or started again.
const followPoll = 200 * time.Millisecond

// Logs implements driver.Driver. The daemon ends a followed stream when the
// container stops; Logs then keeps following (from the last line's time on)
// until ctx ends or the container is removed, as the contract asks.
func (d *Driver) Logs(ctx context.Context, instanceID string, opts driver.LogOptions, fn func(driver.LogLine) error) error {
	c, err := d.inspect(ctx, instanceID)
	if err != nil {
		return err
	}
	since := opts.Since
	for {
		var last time.Time
		err := d.readLogs(ctx, c.ID, since, opts.Follow, func(l driver.LogLine) error {
			last = l.Time
			return fn(l)
		})
		if !last.IsZero() {
			since = last.Add(time.Nanosecond)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			// A followed container that is being removed ends the follow:
			// the daemon says "not found", or (mid-removal, Docker 20.10)
			// that it is dead or marked for removal.
			if opts.Follow && (isNotFound(err) || strings.Contains(err.Error(), "dead or marked for removal")) {
				return nil
			}
			return err
		}
		if !opts.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
		now, err := d.inspect(ctx, instanceID)
		if err == driver.ErrNotFound || (err == nil && now.ID != c.ID) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (d *Driver) readLogs(ctx context.Context, containerID string, since time.Time, follow bool, fn func(driver.LogLine) error) error {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: follow}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := d.cli.ContainerLogs(ctx, containerID, opts)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", containerID, err)
	}
	defer rc.Close()
	return copyFrames(&lineWriter{stream: "stdout", fn: fn}, &lineWriter{stream: "stderr", fn: fn}, rc)
}

// copyFrames demultiplexes the daemon's log stream into lines.
func copyFrames(out, errw *lineWriter, r io.Reader) error {
	if _, err := stdcopy.StdCopy(out, errw, r); err != nil {
		return err
	}
	if err := out.flush(); err != nil {
		return err
	}
	return errw.flush()
}

// lineWriter turns the frames of one stream into LogLines. Every frame the
// daemon sends starts with its RFC 3339 timestamp; a line longer than the
// daemon's 16 KiB buffer arrives as several frames, the last ending in a
// newline, and is joined again under the first frame's time.
type lineWriter struct {
	stream  string
	fn      func(driver.LogLine) error
	pending []byte
	time    time.Time
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		ts, rest := cutTimestamp(p)
		if len(w.pending) == 0 {
			w.time = ts
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			w.pending = append(w.pending, rest...)
			return n, nil
		}
		w.pending = append(w.pending, rest[:i]...)
		if err := w.flush(); err != nil {
			return 0, err
		}
		p = rest[i+1:]
	}
	return n, nil
}

func (w *lineWriter) flush() error {
	if len(w.pending) == 0 && w.time.IsZero() {
		return nil
	}
	line := strings.TrimSuffix(string(w.pending), "\r")
	t := w.time
	w.pending, w.time = w.pending[:0], time.Time{}
	return w.fn(driver.LogLine{Time: t, Stream: w.stream, Line: line})
}

// cutTimestamp splits "2006-01-02T15:04:05.999999999Z rest" into its time
// and rest; without a timestamp the time is zero and p comes back whole.
func cutTimestamp(p []byte) (time.Time, []byte) {
	i := bytes.IndexByte(p, ' ')
	if i < 0 || i > 40 {
		return time.Time{}, p
	}
	t, err := time.Parse(time.RFC3339Nano, string(p[:i]))
	if err != nil {
		return time.Time{}, p
	}
	return t, p[i+1:]
}
