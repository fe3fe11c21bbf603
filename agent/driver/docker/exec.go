package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/wharf-platform/wharf/agent/driver"
)

var _ driver.ExecStreamer = (*Driver)(nil)

// ExecStream implements driver.ExecStreamer with a Docker exec attached to
// req's streams: with a TTY the daemon sends the terminal's output raw,
// without one stdout and stderr multiplexed (stdcopy).
func (d *Driver) ExecStream(ctx context.Context, instanceID string, req driver.ExecRequest) (int, error) {
	if _, err := d.inspect(ctx, instanceID); err != nil {
		return -1, err
	}
	var size client.ConsoleSize
	if req.TTY && req.Size.Cols > 0 && req.Size.Rows > 0 {
		size = client.ConsoleSize{Width: uint(req.Size.Cols), Height: uint(req.Size.Rows)}
	}
	ex, err := d.cli.ExecCreate(ctx, containerName(instanceID), client.ExecCreateOptions{
		Cmd: req.Cmd, TTY: req.TTY, ConsoleSize: size,
		AttachStdin: req.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
	}
	att, err := d.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: req.TTY, ConsoleSize: size})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
	}
	defer att.Close()
	// The hijacked connection knows nothing of ctx.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()

	if size.Width > 0 {
		// Daemons before API 1.42 ignore the size given at creation.
		_, _ = d.cli.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Width: size.Width, Height: size.Height})
	}
	if req.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, req.Stdin)
			if cw, ok := att.Conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
	}
	resizeDone := make(chan struct{})
	defer close(resizeDone)
	if req.TTY && req.Resize != nil {
		go func() {
			for {
				select {
				case <-resizeDone:
					return
				case s, ok := <-req.Resize:
					if !ok {
						return
					}
					_, _ = d.cli.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Width: uint(s.Cols), Height: uint(s.Rows)})
				}
			}
		}()
	}
	stdout, stderr := orDiscard(req.Stdout), orDiscard(req.Stderr)
	if req.TTY {
		_, err = io.Copy(stdout, att.Reader)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
	}
	if ctx.Err() != nil {
		d.killExec(ex.ID)
		return -1, ctx.Err()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
	}
	// The output ends a moment before the daemon records the exit code.
	for {
		res, err := d.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// killExec kills an exec whose caller went away: Docker has no call for
// it, but reports its process id on the host (best effort: the daemon
// runs on the agent's host, and the agent as root).
func (d *Driver) killExec(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := d.cli.ExecInspect(ctx, id, client.ExecInspectOptions{})
	if err != nil || !res.Running || res.PID <= 0 {
		return
	}
	p, err := os.FindProcess(res.PID)
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		d.log.Debug("kill an abandoned exec", "exec", id, "pid", res.PID, "err", err)
	}
}
