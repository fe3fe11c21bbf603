package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host is one machine of the lab: a network namespace with one address.
type Host struct {
	lab     *Lab
	dc      *DC
	name    string
	ns      string
	veth    string
	ip      netip.Addr
	logPath string

	mu    sync.Mutex
	procs []*proc
}

// proc is a process started by Host.Start.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped
}

// Name is the host's name.
func (h *Host) Name() string { return h.name }

// DC is the host's datacenter.
func (h *Host) DC() *DC { return h.dc }

// NS is the name of the host's network namespace (for ip netns exec).
func (h *Host) NS() string { return h.ns }

// Veth is the name of the bridge-side end of the host's veth pair in the
// root namespace (the host's end is eth0).
func (h *Host) Veth() string { return h.veth }

// IP is the host's address.
func (h *Host) IP() netip.Addr { return h.ip }

// AddrPort is the host's address with the port, as "ip:port".
func (h *Host) AddrPort(port uint16) string {
	return netip.AddrPortFrom(h.ip, port).String()
}

// LogPath is the file that collects the output of the processes started
// with Start (appended, one file per host, under the test's TempDir).
func (h *Host) LogPath() string { return h.logPath }

// Command returns a command that runs name with args inside the host's
// network namespace. It runs `ip netns exec`, which execs, so the
// process's PID is the program itself. The command gets its own process
// group and SIGKILL if the test process dies; ctx's end SIGKILLs the
// group. Run it with Start to have it tracked, logged and killed on
// cleanup.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return cmd
}

// Start starts cmd (from Command) and tracks it: its stdout and stderr,
// unless set, go to LogPath; it runs in its own process group. Kill,
// Stop, Continue and the lab's cleanup signal that group. The lab reaps
// it: do not call cmd.Wait; use Done.
func (h *Host) Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pgid = 0
	h.lab.mu.Lock()
	closed := h.lab.closed
	h.lab.mu.Unlock()
	if closed {
		return fmt.Errorf("start in host %s: lab closed", h.name)
	}
	f, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start in host %s: %w", h.name, err)
	}
	defer f.Close() // the child has its own copy
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	if cmd.Stderr == nil {
		cmd.Stderr = f
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start in host %s: %w", h.name, err)
	}
	fmt.Fprintf(f, "=== netlab: %s started pid %d: %s\n", time.Now().Format(time.TimeOnly), cmd.Process.Pid, strings.Join(cmd.Args, " "))
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	h.procs = append(h.procs, p)
	return nil
}

// Processes returns the commands started with Start that have not been
// reaped yet.
func (h *Host) Processes() []*exec.Cmd {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cmds []*exec.Cmd
	for _, p := range h.procs {
		select {
		case <-p.done:
		default:
			cmds = append(cmds, p.cmd)
		}
	}
	return cmds
}

// Done returns a channel closed once cmd, started with Start, has exited
// and been reaped (cmd.ProcessState is then set); nil if h did not start
// cmd.
func (h *Host) Done(cmd *exec.Cmd) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.procs {
		if p.cmd == cmd {
			return p.done
		}
	}
	return nil
}

// signal sends sig to the process group of every live tracked process.
func (h *Host) signal(sig syscall.Signal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, p := range h.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("%v to pid %d in host %s: %w", sig, p.cmd.Process.Pid, h.name, err))
		}
	}
	return errors.Join(errs...)
}

// Kill SIGKILLs the process group of every tracked process of the host,
// and whatever else runs in its network namespace (processes those
// started in sessions of their own: a dead machine takes everything with
// it), and waits until the tracked ones are reaped (their
// Cmd.ProcessState is set).
func (h *Host) Kill() error {
	err := h.signal(syscall.SIGKILL)
	killNetnsPids(h.ns)
	h.mu.Lock()
	procs := append([]*proc(nil), h.procs...)
	h.mu.Unlock()
	timeout := time.After(10 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-timeout:
			return errors.Join(err, fmt.Errorf("kill host %s: pid %d not reaped after 10s", h.name, p.cmd.Process.Pid))
		}
	}
	return err
}

// Stop SIGSTOPs the host's tracked process groups (a frozen machine:
// the kernel still completes TCP handshakes, nothing answers) and waits
// until every thread of each tracked process is stopped.
func (h *Host) Stop() error {
	if err := h.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	return h.waitStopped(true)
}

// Continue SIGCONTs the host's tracked process groups and waits until
// their threads run again.
func (h *Host) Continue() error {
	if err := h.signal(syscall.SIGCONT); err != nil {
		return err
	}
	return h.waitStopped(false)
}

// waitStopped waits until all threads of every live tracked process are
// (or, with stopped false, none is) in state T, for at most 5 s.
func (h *Host) waitStopped(stopped bool) error {
	h.mu.Lock()
	var pids []int
	for _, p := range h.procs {
		select {
		case <-p.done:
		default:
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	h.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for !threadsStopped(pid, stopped) {
			if time.Now().After(deadline) {
				return fmt.Errorf("host %s: pid %d not %s after 5s", h.name, pid, map[bool]string{true: "stopped", false: "running"}[stopped])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// threadsStopped tells whether every thread of pid is in state T (want
// true) or none is (want false); a vanished process counts as done.
func threadsStopped(pid int, want bool) bool {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) {
			continue
		}
		state := s[i+2]
		if state == 'Z' || state == 'X' {
			continue
		}
		if (state == 'T') != want {
			return false
		}
	}
	return true
}

// Do runs f on an OS thread that is inside the host's network namespace,
// so sockets f creates belong to the host (they stay there when used from
// other goroutines later). Goroutines that f starts do not run in the
// namespace.
func (h *Host) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("own netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", h.ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns of host %s: %w", h.name, err)
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", h.ns, err)
			return
		}
		ferr := f()
		if err := setns(orig); err != nil {
			// Leave the thread locked: it ends with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", h.ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func setns(f *os.File) error {
	sysNr := sysSetns
	if sysNr < 0 {
		return syscall.ENOSYS
	}
	_, _, e := syscall.RawSyscall(uintptr(sysNr), f.Fd(), syscall.CLONE_NEWNET, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Dial connects from inside the host.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen listens inside the host.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// ListenPacket opens a packet socket inside the host.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// logTail logs the last n lines of the host's log to the test.
func (h *Host) logTail(n int) {
	f, err := os.Open(h.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return
	}
	h.lab.t.Logf("netlab: last lines of host %s (%s):\n%s", h.name, h.logPath, strings.Join(lines, "\n"))
}
