package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	"github.com/wharf-platform/wharf/agent/driver"
)

var _ driver.ExecStreamer = (*Driver)(nil)

// ExecStream implements driver.ExecStreamer with the Pod's exec
// subresource, in its first container (the instance's): WebSocket
// (v5.channel.k8s.io) as kubectl speaks it, SPDY for API servers that
// refuse the upgrade.
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
	case err != nil:
		return -1, fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	return 0, nil
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
