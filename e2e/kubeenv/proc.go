package kubeenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is one component process: its own process group, its output in a
// log file, stopped by its PID.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done closes
}

// startProc runs bin with args, output to logPath.
func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that a ^C to go test reaches the test
	// (which stops it in order) rather than the component; and killed with
	// the test process should that die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited tells whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process (and its group, which holds what it
// started in it) and SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	// Anything it left in its group goes too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// failure describes an early exit, with the end of the log.
func (p *proc) failure() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, logTail(p.log, 30))
	default:
		return nil
	}
}

// logTail returns the last n lines of a log file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return lastLines(string(b), n)
}

// errStopped is returned by waits that saw a component exit.
var errStopped = errors.New("component exited")

// waitFor polls cond every interval until it returns true or an error,
// a watched process exits, or timeout passes.
func waitFor(what string, timeout time.Duration, watch []*proc, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		for _, p := range watch {
			if err := p.failure(); err != nil {
				return fmt.Errorf("waiting for %s: %w: %w", what, errStopped, err)
			}
		}
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s not reached in %v", what, timeout)
			if last != nil {
				msg += fmt.Sprintf(" (last error: %v)", last)
			}
			for _, p := range watch {
				msg += fmt.Sprintf("\n--- %s log:\n%s", p.name, logTail(p.log, 15))
			}
			return errors.New(strings.TrimSpace(msg))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
