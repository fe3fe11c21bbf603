package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/wharf-platform/wharf/agent/driver"
)

var _ driver.ExecStreamer = (*Driver)(nil)

// joinCgroups is the shell stage of an exec into an isolated instance: it
// moves itself into the instance's cgroup (its first argument counts the
// cgroup directories that follow) and then executes the rest, so that the
// command is counted against the instance's limits from its first
// instruction. Exit 125: the cgroup could not be joined.
const joinCgroups = `n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; n=$((n-1)); done; exec "$@"`

// ExecStream implements driver.ExecStreamer. The command runs with the
// instance's environment in its working directory; in an isolated
// instance it enters the instance's mount, UTS, IPC and PID namespaces
// (nsenter) and its cgroup. With a TTY it gets a pseudo-terminal of its
// own as its controlling terminal.
func (d *Driver) ExecStream(ctx context.Context, instanceID string, req driver.ExecRequest) (int, error) {
	if len(req.Cmd) == 0 {
		return -1, errors.New("exec: no command")
	}
	dir, st, err := d.own(instanceID)
	if err != nil {
		return -1, err
	}
	if s := statusAt(dir, st); s.State != driver.StateRunning {
		return -1, fmt.Errorf("exec in %s: the instance is %s, not running", instanceID, s.State)
	}
	work := filepath.Join(dir, dirWork)
	path, err := lookPath(req.Cmd[0], st.Env)
	if err != nil {
		// As a shell (and Docker) says it: the command's failure, not
		// Wharf's.
		fmt.Fprintf(orDiscard(req.Stderr), "%s: command not found\n", req.Cmd[0])
		return 127, nil
	}
	cmd := &osexec.Cmd{Path: path, Args: req.Cmd}
	if st.Isolated {
		nsenter, err := osexec.LookPath("nsenter")
		if err != nil {
			return -1, fmt.Errorf("exec in %s: entering its namespaces needs nsenter (util-linux): %w", instanceID, err)
		}
		args := append([]string{"sh", "-c", joinCgroups, "sh", strconv.Itoa(len(st.Cgroups))}, st.Cgroups...)
		args = append(args, nsenter, "--target", strconv.Itoa(st.PID), "--mount", "--uts", "--ipc", "--pid", "--wd="+work, "--", path)
		cmd = &osexec.Cmd{Path: "/bin/sh", Args: append(args, req.Cmd[1:]...)}
	}
	cmd.Env, cmd.Dir = st.Env, work
	// Its own session: killed as a group when ctx ends, and able to take
	// a terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: req.TTY}
	if req.TTY {
		return d.execTTY(ctx, cmd, instanceID, req)
	}
	return d.execPipes(ctx, cmd, instanceID, req)
}

func (d *Driver) execPipes(ctx context.Context, cmd *osexec.Cmd, instanceID string, req driver.ExecRequest) (int, error) {
	cmd.Stdout, cmd.Stderr = orDiscard(req.Stdout), orDiscard(req.Stderr)
	// A child left running in the background must not hold the answer.
	cmd.WaitDelay = 2 * time.Second
	var stdinW *os.File
	if req.Stdin != nil {
		// An os.Pipe rather than cmd.Stdin = req.Stdin: Wait would wait for
		// a copier blocked on input that never comes.
		r, w, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		cmd.Stdin, stdinW = r, w
		defer r.Close()
		defer w.Close()
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
	}
	killOnCancel := context.AfterFunc(ctx, func() { killGroup(cmd) })
	defer killOnCancel()
	if stdinW != nil {
		cmd.Stdin.(*os.File).Close()
		go func() {
			_, _ = io.Copy(stdinW, req.Stdin)
			stdinW.Close()
		}()
	}
	return d.wait(ctx, cmd)
}

func (d *Driver) execTTY(ctx context.Context, cmd *osexec.Cmd, instanceID string, req driver.ExecRequest) (int, error) {
	var size *pty.Winsize
	if req.Size.Cols > 0 && req.Size.Rows > 0 {
		size = &pty.Winsize{Cols: req.Size.Cols, Rows: req.Size.Rows}
	}
	ptmx, err := pty.StartWithAttrs(cmd, size, cmd.SysProcAttr)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", instanceID, err)
	}
	defer ptmx.Close()
	killOnCancel := context.AfterFunc(ctx, func() { killGroup(cmd) })
	defer killOnCancel()
	if req.Stdin != nil {
		go func() { _, _ = io.Copy(ptmx, req.Stdin) }()
	}
	// The resizer uses the terminal's raw descriptor: it ends before the
	// terminal is closed.
	done := make(chan struct{})
	var resizer sync.WaitGroup
	defer resizer.Wait()
	defer close(done)
	if req.Resize != nil {
		resizer.Add(1)
		go func() {
			defer resizer.Done()
			for {
				select {
				case <-done:
					return
				case s, ok := <-req.Resize:
					if !ok {
						return
					}
					_ = pty.Setsize(ptmx, &pty.Winsize{Cols: s.Cols, Rows: s.Rows})
				}
			}
		}()
	}
	copied := make(chan struct{})
	go func() {
		// Ends with EIO once no process holds the terminal any more.
		_, _ = io.Copy(orDiscard(req.Stdout), ptmx)
		close(copied)
	}()
	werr := cmd.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a background child holds the terminal
		ptmx.Close()
		<-copied // no output after the exit code
	}
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	return exitStatus(cmd, werr)
}

// killGroup kills the command's session (its process group): whatever
// it started dies with it.
func killGroup(cmd *osexec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

func (d *Driver) wait(ctx context.Context, cmd *osexec.Cmd) (int, error) {
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	return exitStatus(cmd, werr)
}

// exitStatus is the command's exit code; an error other than its exit
// status (its output could not be delivered) is returned as well.
func exitStatus(cmd *osexec.Cmd, werr error) (int, error) {
	var ee *osexec.ExitError
	if werr != nil && !errors.As(werr, &ee) && !errors.Is(werr, osexec.ErrWaitDelay) {
		return -1, werr
	}
	return exitCode(cmd.ProcessState, nil), nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
