package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// waitFlags are the flags of the commands that change what runs.
type waitFlags struct {
	detach  bool
	timeout time.Duration
}

const defaultWaitTimeout = 5 * time.Minute

// pendingGrace is how long a deploy waits while the hub explains that it
// cannot place instances and nothing changes: a host may be enrolling.
const pendingGrace = time.Minute

// watchWait bounds one blocking query, so that the deploy notices its
// own deadlines (pending, timeout) without the hub's answer.
const watchWait = 15 * time.Second

func (w *waitFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.detach, "detach", false, "return once the hub has accepted the change, without waiting for the rollout")
	cmd.Flags().DurationVar(&w.timeout, "timeout", defaultWaitTimeout, "how long to wait for the rollout before failing")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if w.timeout <= 0 {
			return usagef("--timeout must be more than 0 (--detach does not wait at all)")
		}
		return nil
	}
}

// rolloutError is a rollout that cannot succeed or did not in time. The
// change itself stays: the hub keeps converging towards it.
type rolloutError struct {
	msg string
}

func (r *rolloutError) Error() string { return r.msg }

// progress prints a rollout as it changes: a line per change, or one
// line redrawn in place on a terminal; each problem once per change.
type progress struct {
	w        io.Writer
	tty      bool
	last     string
	drawn    bool
	problems map[string]string
	// earlier is each instance's explanation before its current one: a
	// driver's error is often followed by the agent's "gave up".
	earlier map[string]string
	whys    map[string]string
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: terminal(w), problems: map[string]string{}, earlier: map[string]string{}, whys: map[string]string{}}
}

func (p *progress) update(st appStatus) {
	line := st.counts()
	for _, pr := range st.Problems {
		// The counts show instances on their way; a line is for an
		// explanation, once per change of it (not per restart: an agent
		// clears the message while it retries).
		why := pr.why()
		if why == "" {
			continue
		}
		if w := p.whys[pr.ID]; w != "" && w != why {
			p.earlier[pr.ID] = w
		}
		p.whys[pr.ID] = why
		if pr.State == "running" && pr.Reason == "" {
			// A health check failing while the app starts is on its way,
			// not a problem: the agent says unhealthy once its grace is
			// over.
			continue
		}
		key := pr.State + "\x00" + why
		if p.problems[pr.ID] == key {
			continue
		}
		p.problems[pr.ID] = key
		p.clear()
		fmt.Fprintf(p.w, "  %s\n", pr.line())
	}
	if p.tty {
		if !p.drawn || line != p.last {
			p.clear()
			// A line longer than the terminal wraps, and a wrapped line
			// cannot be redrawn in place.
			if n := width(p.w); n > 1 {
				fmt.Fprint(p.w, shorten(line, n-1))
			} else {
				fmt.Fprint(p.w, line)
			}
			p.drawn = true
		}
	} else if line != p.last {
		fmt.Fprintln(p.w, line)
	}
	p.last = line
}

// note prints a line about the watch itself, once until it changes.
func (p *progress) note(s string) {
	if p.problems["\x00note"] == s {
		return
	}
	p.problems["\x00note"] = s
	p.clear()
	fmt.Fprintf(p.w, "  (%s)\n", s)
}

// clear removes the line drawn in place, so something else can print.
func (p *progress) clear() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// done ends the redrawn line.
func (p *progress) done() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// progressOut is where progress goes: stdout for tables, stderr when
// stdout carries JSON or YAML.
func (e *env) progressOut() io.Writer {
	if e.output == "table" {
		return e.stdout
	}
	return e.stderr
}

// retryable errors are the cluster's or the network's passing troubles:
// no leader for a moment, a hub node restarting.
func retryable(err error) bool {
	if s := apitypes.StatusOf(err); s != 0 {
		return s == http.StatusServiceUnavailable || s == http.StatusBadGateway || s == http.StatusGatewayTimeout
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// waitRollout follows app name until its version target (0: whatever
// version is current) is rolled out, printing progress. It returns the
// app as last read. It watches with blocking queries on the app's
// instances, whose index moves with the app, its instances and versions.
func (e *env) waitRollout(ctx context.Context, c *client.Client, name string, target int, timeout time.Duration) (*apitypes.App, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prog := newProgress(e.progressOut())
	defer prog.done()
	e.onRetry = func(err error) { prog.note("retrying: " + e.explain(err)) }
	defer func() { e.onRetry = nil }()
	var (
		index        uint64
		last         appStatus
		app          *apitypes.App
		pendingSince time.Time
		pendingWhy   string
		pendingAt    int
	)
	ended := func(err error) error {
		prog.done()
		st := last.counts()
		if app == nil {
			st = "nothing read yet"
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg := fmt.Sprintf("timed out after %s waiting for app %s: %s", timeout, name, st)
			if p, ok := last.explained(); ok {
				msg += "; " + p.line()
			}
			return &rolloutError{msg + "\n" + e.followHint(name)}
		}
		if ctx.Err() != nil {
			return &rolloutError{fmt.Sprintf("stopped waiting for app %s: %s\n%s", name, st, e.followHint(name))}
		}
		return err
	}
	for {
		q := e.query()
		if index > 0 {
			q.WaitIndex, q.WaitTime = index, watchWait
		}
		is, meta, err := c.Apps().Instances(ctx, name, q)
		if err == nil {
			app, _, err = c.Apps().Get(ctx, name, e.query())
		}
		if err != nil {
			if ctx.Err() != nil {
				return app, ended(ctx.Err())
			}
			if !retryable(err) {
				return app, ended(err)
			}
			prog.note("retrying: " + e.explain(err))
			index = 0
			select {
			case <-ctx.Done():
				return app, ended(ctx.Err())
			case <-time.After(time.Second):
			}
			continue
		}
		if meta.LastIndex < index {
			index = 0 // the hub's index went back (a restored node): start over
		} else {
			index = meta.LastIndex
		}
		if target == 0 {
			target = app.Version
		}
		last = summarize(app, is)
		prog.update(last)
		if app.Version != target {
			prog.done()
			return app, &rolloutError{fmt.Sprintf("app %s is no longer at version %d but at version %d%s", name, target, app.Version, e.lastChange(ctx, c, name))}
		}
		if last.Done {
			return app, nil
		}
		if p, ok := last.hopeless(); ok {
			prog.done()
			msg := fmt.Sprintf("app %s version %d cannot run: instance %s", name, target, p.line())
			if w := prog.earlier[p.ID]; w != "" {
				msg += "; before that: " + w
			}
			return app, &rolloutError{msg + "\n" + e.rollbackHint(name, app)}
		}
		switch {
		case last.Pending == "":
			pendingSince = time.Time{}
		case pendingSince.IsZero() || last.Pending != pendingWhy || last.Placed != pendingAt:
			pendingSince, pendingWhy, pendingAt = time.Now(), last.Pending, last.Placed
		case time.Since(pendingSince) >= pendingGrace:
			prog.done()
			return app, &rolloutError{fmt.Sprintf("app %s version %d cannot be placed (for %s, after %s): %s\n%s", name, target,
				pendingGrace, time.Since(start).Round(time.Second), last.Pending, e.followHint(name))}
		}
	}
}

// lastChange is the latest entry of the app's history, which says why
// its version changed (an automatic revert, another user's deploy).
func (e *env) lastChange(ctx context.Context, c *client.Client, name string) string {
	ds, _, err := c.Apps().History(ctx, name, e.query())
	if err != nil || len(ds) == 0 {
		return ""
	}
	d := ds[len(ds)-1]
	return fmt.Sprintf(" (%s: %s)", d.Kind, d.Message)
}

func (e *env) tenantFlag() string {
	if e.tenant == "" {
		return ""
	}
	return " --tenant " + e.tenant
}

func (e *env) followHint(name string) string {
	return fmt.Sprintf("The change stays: the hub keeps working on it. Follow it with `wharf app status %s%s`.", name, e.tenantFlag())
}

func (e *env) rollbackHint(name string, a *apitypes.App) string {
	h := fmt.Sprintf("See `wharf app status %s%s`", name, e.tenantFlag())
	if a.CanaryFrom != 0 {
		return h + fmt.Sprintf("; end the canary with `wharf app abort %s%s`.", name, e.tenantFlag())
	}
	if a.Version > 1 {
		return h + fmt.Sprintf("; go back with `wharf app rollback %s VERSION%s` (`wharf app versions %s` lists them).", name, e.tenantFlag(), name)
	}
	return h + "."
}

// finish waits for the rollout of a change unless --detach, then prints
// the app (JSON/YAML) or a line saying it is rolled out.
func (e *env) finish(cmd *cobra.Command, c *client.Client, w waitFlags, a *apitypes.App, target int) error {
	if !w.detach {
		got, err := e.waitRollout(cmd.Context(), c, a.Name, target, w.timeout)
		if err != nil {
			return err
		}
		a = got
		if e.output == "table" {
			n := deref(a.Instances)
			switch {
			case n == 0:
				fmt.Fprintf(e.stdout, "app %s: every instance stopped\n", a.Name)
			case a.CanaryFrom != 0:
				fmt.Fprintf(e.stdout, "app %s: canary version %d ready beside version %d; `wharf app promote %s` rolls it out, `wharf app abort %s` ends it\n", a.Name, a.Version, a.CanaryFrom, a.Name, a.Name)
			default:
				fmt.Fprintf(e.stdout, "app %s version %d: %s ready\n", a.Name, a.Version, plural(n, "instance"))
			}
		}
	}
	if e.output != "table" {
		return e.print(a, nil, nil)
	}
	return nil
}
