package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/wharf-platform/wharf/agent/driver"
)

var _ driver.ExecStreamer = (*Driver)(nil)

// ExecStream implements driver.ExecStreamer with the Pod's exec
// subresource, in its first container (the instance's): WebSocket
// (v5.channel.k8s.io) as kubectl speaks it, SPDY for API servers that
// refuse the upgrade. A command the runtime cannot start exits 127 (126:
// not executable) with the reason on stderr, as in a shell. When ctx ends
// the stream closes and ExecStream returns; the kubelet has no call to
// kill an exec, so whether the command dies with its stream is the
// container runtime's choice (containerd 1.6 lets it run to its end).
func (d *Driver) ExecStream(ctx context.Context, id string, req driver.ExecRequest) (int, error) {
	p := d.cached(id)
	if p == nil || len(p.Spec.Containers) == 0 {
		return -1, driver.ErrNotFound
	}
	return execPod(ctx, d.rc, d.cs.CoreV1().RESTClient(), p.Namespace, p.Name, p.Spec.Containers[0].Name, req)
}

// execPod runs req in a container of a Pod and returns its exit code.
func execPod(ctx context.Context, rc *rest.Config, api rest.Interface, namespace, pod, container string, req driver.ExecRequest) (int, error) {
	u := api.Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: req.Cmd, Stdin: req.Stdin != nil,
			Stdout: true, Stderr: !req.TTY, TTY: req.TTY}, scheme.ParameterCodec).URL()
	ws, err := remotecommand.NewWebSocketExecutor(rc, "GET", u.String())
	if err != nil {
		return -1, fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(rc, "POST", u)
	if err != nil {
		return -1, fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	// The WebSocket dialer reports a refused upgrade with k8s.io/streaming's
	// error type: apimachinery's deprecated httpstream does not recognise
	// it, and with it the SPDY fallback never ran.
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return -1, err
	}
	opts := remotecommand.StreamOptions{Stdin: req.Stdin, Stdout: orDiscard(req.Stdout), Tty: req.TTY}
	if !req.TTY {
		opts.Stderr = orDiscard(req.Stderr)
	} else {
		opts.TerminalSizeQueue = &sizeQueue{ctx: ctx, next: req.Size, sizes: req.Resize}
	}
	err = ex.StreamWithContext(ctx, opts)
	var ce exec.CodeExitError
	switch {
	case errors.As(err, &ce):
		return ce.Code, nil
	case err != nil && ctx.Err() != nil: // the stream broke because the caller left
		return -1, fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, ctx.Err())
	case err != nil:
		if code, msg, ok := startFailure(err); ok {
			w := opts.Stderr
			if req.TTY {
				w = opts.Stdout
			}
			fmt.Fprintf(w, "%s: %s\n", req.Cmd[0], msg)
			return code, nil
		}
		return -1, fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	return 0, nil
}

// startFailure recognises, in the error the kubelet reports on the status
// channel, a command the container runtime could not start, and returns
// the exit code a shell gives it (127: no such file, 126: not executable)
// with the runtime's reason. The kubelet reports it as an internal error,
// not an exit code; taken as such, a mistyped command would look like a
// failure of Wharf (the CLI's 255) where Docker and the exec driver give
// the command's 126 or 127.
func startFailure(err error) (code int, msg string, ok bool) {
	s := err.Error()
	low := strings.ToLower(s)
	if !strings.Contains(low, "error executing command in container") {
		return 0, "", false
	}
	// runc: `exec failed: unable to start container process: exec:
	// "/bin/sh": stat /bin/sh: no such file or directory: unknown`.
	if i := strings.LastIndex(s, "exec failed: "); i >= 0 {
		msg = strings.TrimSuffix(s[i+len("exec failed: "):], ": unknown")
	} else {
		msg = s
	}
	switch {
	case strings.Contains(low, "no such file or directory"), strings.Contains(low, "executable file not found"):
		return 127, msg, true
	case strings.Contains(low, "permission denied"):
		return 126, msg, true
	}
	return 0, "", false
}

// sizeQueue hands the executor the terminal's first size, then each new
// one, until ctx ends.
type sizeQueue struct {
	ctx   context.Context // the exec's
	next  driver.TermSize
	sizes <-chan driver.TermSize
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	for q.next.Cols == 0 || q.next.Rows == 0 {
		select {
		case <-q.ctx.Done():
			return nil
		case s, ok := <-q.sizes:
			if !ok {
				return nil
			}
			q.next = s
		}
	}
	s := &remotecommand.TerminalSize{Width: q.next.Cols, Height: q.next.Rows}
	q.next = driver.TermSize{}
	return s
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
