package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
)

// The supervisor ("shim") is the agent's own binary, started again with
// envShim set to an instance's directory. It runs in its own session and
// survives the agent, so that a restarted agent adopts running instances
// instead of restarting them. It starts the instance (with Pdeathsig, so
// that the instance never outlives it), stamps and writes its output to the
// log files, records its pid, start and exit in state.json, and exits after
// the instance does.
//
// Isolated instances start through a second stage, the same binary with
// envInit set: in the new namespaces, and only once the supervisor has put
// it into the instance's cgroup, it sets the hostname, mounts a private
// /proc and executes the instance's command.
const (
	envShim = "WHARF_EXEC_SHIM"
	envInit = "WHARF_EXEC_INIT"
	// envSecret prefixes each of the app's secrets in the supervisor's
	// environment: the driver hands them over in memory, the supervisor
	// adds them to the instance's environment and never writes them to
	// state.json. A supervisor started again (a restart) gets them anew
	// from the driver's Start.
	envSecret = "WHARF_EXEC_SECRET_"
)

// Reexec runs the supervisor or namespace stage of the exec driver when
// this process was started as one, and then exits; otherwise it returns at
// once. The agent's main, and TestMain of any test binary that runs the
// exec driver, must call it before anything else.
func Reexec() {
	if dir := os.Getenv(envShim); dir != "" {
		os.Exit(runShim(dir))
	}
	if os.Getenv(envInit) == "1" {
		os.Exit(runInit())
	}
}

// initConfig is what the supervisor hands the namespace stage on fd 3.
type initConfig struct {
	Hostname string   `json:"hostname"`
	Path     string   `json:"path"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
}

// runInit is the namespace stage: fd 3 carries its initConfig (closed by the
// supervisor once the process is in its cgroup), fd 4 takes an error.
func runInit() int {
	cfgPipe, errPipe := os.NewFile(3, "init-config"), os.NewFile(4, "init-error")
	fail := func(err error) int {
		fmt.Fprint(errPipe, err.Error())
		return 127
	}
	var c initConfig
	if err := json.NewDecoder(cfgPipe).Decode(&c); err != nil {
		return fail(fmt.Errorf("read init config: %w", err))
	}
	cfgPipe.Close()
	if err := prepareNamespaces(c.Hostname); err != nil {
		return fail(err)
	}
	syscall.CloseOnExec(4) // closes on success, so the supervisor reads EOF
	err := syscall.Exec(c.Path, c.Args, c.Env)
	return fail(fmt.Errorf("exec %s: %w", c.Path, err))
}

// runShim supervises one run of the instance in dir. fd 3 is the driver's
// ready pipe: "ok" once the instance runs, else the reason it did not start.
func runShim(dir string) int {
	ready := os.NewFile(3, "ready")
	syscall.CloseOnExec(3) // inherited fds are not: the instance must not hold it
	_ = os.Chdir("/")
	secrets := takeSecrets()
	st, err := readState(dir)
	if err != nil {
		fmt.Fprint(ready, err.Error())
		return 1
	}
	env := withSecrets(st.Env, secrets) // st.Env, written back to state.json, stays without them
	fail := func(err error) int {
		st.Error = err.Error()
		_ = writeState(dir, st)
		fmt.Fprint(ready, err.Error())
		ready.Close()
		return 1
	}

	// Pdeathsig fires when the thread that forked the child ends: keep this
	// goroutine on its thread for the supervisor's whole life.
	runtime.LockOSThread()

	path, err := lookPath(st.Spec.Command[0], st.Env)
	if err != nil {
		return fail(err)
	}
	logs := make([]*os.File, 2)
	for i, name := range []string{fileStdout, fileStderr} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		logs[i] = f
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	work := filepath.Join(dir, dirWork)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fail(err)
	}

	var cmd *osexec.Cmd
	if st.Isolated {
		cmd, err = startIsolated(st, env, path, work, outW, errW)
	} else {
		cmd = &osexec.Cmd{Path: path, Args: st.Spec.Command, Env: env, Dir: work,
			Stdout: outW, Stderr: errW, SysProcAttr: childAttr(false)}
		err = cmd.Start()
	}
	outW.Close()
	errW.Close()
	if err != nil {
		return fail(fmt.Errorf("start %s: %w", st.Spec.Command[0], err))
	}
	pid := cmd.Process.Pid

	var copying sync.WaitGroup
	for i, r := range []*os.File{outR, errR} {
		copying.Go(func() {
			_ = copyLines(logs[i], r, time.Now)
			r.Close()
		})
	}

	st.PID, st.ShimPID = pid, os.Getpid()
	_, st.PIDStart, _ = procStat(pid)
	_, st.ShimStart, _ = procStat(st.ShimPID)
	st.StartedAt, st.FinishedAt = time.Now().UTC(), time.Time{}
	st.Exited, st.ExitCode, st.Error = false, 0, ""
	if err := writeState(dir, st); err != nil {
		signalGroup(pid, syscall.SIGKILL)
		return fail(err)
	}
	fmt.Fprint(ready, "ok")
	ready.Close()

	// A SIGTERM to the supervisor (an operator, a service manager) stops the
	// instance gracefully; the driver's Stop signals the instance itself.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for range sigs {
			signalGroup(pid, syscall.SIGTERM)
		}
	}()
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

	werr := cmd.Wait()
	// Whatever the instance left behind in its group dies with it, as in a
	// container whose first process exits.
	signalGroup(pid, syscall.SIGKILL)
	drained := make(chan struct{})
	go func() { copying.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second): // a descendant that left the group holds a pipe
	}

	st.Exited, st.ExitCode, st.FinishedAt = true, exitCode(cmd.ProcessState, werr), time.Now().UTC()
	_ = writeState(dir, st)
	return 0
}

// startIsolated starts the namespace stage in new namespaces, puts it into
// the instance's cgroup and hands it the command to execute.
func startIsolated(st *state, env []string, path, work string, stdout, stderr *os.File) (*osexec.Cmd, error) {
	// It boots with at least driver.BootCPU; the agent's Settle sets its
	// own limit once it is ready.
	if err := setupCgroup(st.CgroupRoot, st.Cgroups, st.Spec.CPU, driver.BootLimit(st.Spec.CPU), st.Spec.Memory); err != nil {
		return nil, err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cfgW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return nil, err
	}
	defer errR.Close()
	cmd := &osexec.Cmd{
		// The running binary even when an upgrade replaced its file.
		Path: "/proc/self/exe", Args: []string{"wharf-exec-init"}, Env: []string{envInit + "=1"}, Dir: work,
		Stdout: stdout, Stderr: stderr, ExtraFiles: []*os.File{cfgR, errW},
		SysProcAttr: childAttr(true),
	}
	err = cmd.Start()
	cfgR.Close()
	errW.Close()
	if err != nil {
		return nil, err
	}
	abort := func(err error) (*osexec.Cmd, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	if err := joinCgroup(st.Cgroups, cmd.Process.Pid); err != nil {
		return abort(err)
	}
	c := initConfig{Hostname: st.Spec.InstanceID, Path: path, Args: st.Spec.Command, Env: env}
	if err := json.NewEncoder(cfgW).Encode(c); err != nil {
		return abort(fmt.Errorf("hand over init config: %w", err))
	}
	cfgW.Close()
	// EOF without a word: the command was executed.
	msg, _ := io.ReadAll(errR)
	if len(msg) > 0 {
		return abort(errors.New(string(msg)))
	}
	return cmd, nil
}

// lookPath resolves a command name in the PATH of the instance's
// environment, not the supervisor's.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", name)
}

// exitCode is the instance's exit code; death by a signal counts as 128 plus
// its number, as in a shell and in Docker.
func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// takeSecrets removes the app's secrets from the supervisor's environment
// (which nothing it starts inherits anyway) and returns them as NAME=VALUE.
func takeSecrets() []string {
	var out []string
	for _, kv := range os.Environ() {
		if rest, ok := strings.CutPrefix(kv, envSecret); ok {
			out = append(out, rest)
			_ = os.Unsetenv(kv[:strings.IndexByte(kv, '=')])
		}
	}
	return out
}

// withSecrets returns env with the secrets (NAME=VALUE) set over it.
func withSecrets(env, secrets []string) []string {
	if len(secrets) == 0 {
		return env
	}
	names := map[string]bool{}
	for _, kv := range secrets {
		name, _, _ := strings.Cut(kv, "=")
		names[name] = true
	}
	out := make([]string, 0, len(env)+len(secrets))
	for _, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); !names[name] {
			out = append(out, kv)
		}
	}
	return append(out, secrets...)
}
