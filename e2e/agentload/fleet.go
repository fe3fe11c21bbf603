package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-platform/wharf/agent"
)

// fleet is a group of agents: in this process (localFleet) or in a child
// process of this tool (childFleet), which the parent drives alike.
type fleet interface {
	// status counts the agents with a heartbeat acknowledged, and those
	// with two more acknowledged since mark.
	status() (connected, back int, err error)
	// measure starts collecting heartbeat round trips.
	measure() error
	// samples stops collecting and returns the round trips, in µs.
	samples() ([]int64, error)
	// mark remembers each agent's acknowledged count (at the hub's kill).
	mark() error
	// stop ends the agents and waits for them.
	stop() error
	// pid is the process the agents run in (0: none to measure).
	pid() int
}

// localFleet runs n agents in this process.
type localFleet struct {
	agents []*agent.Agent
	marks  []uint64
	stopFn context.CancelFunc
	wg     sync.WaitGroup
	dir    string

	mu        sync.Mutex
	measuring bool
	rtts      []int64
}

// startLocal enrols and runs n agents named load-first .. load-(first+n-1),
// at most enrolling enrolments in flight.
func startLocal(ctx context.Context, hub, joinToken string, first, n, enrolling int) (*localFleet, error) {
	dir, err := os.MkdirTemp("", "agentload")
	if err != nil {
		return nil, err
	}
	f := &localFleet{agents: make([]*agent.Agent, n), dir: dir}
	onAck := func(d time.Duration) {
		f.mu.Lock()
		if f.measuring {
			f.rtts = append(f.rtts, d.Microseconds())
		}
		f.mu.Unlock()
	}
	logger, err := agentLogger(first)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	f.stopFn = stop
	sem := make(chan struct{}, max(enrolling, 1))
	for i := range f.agents {
		a, err := agent.New(agent.Config{Hubs: []string{hub}, Token: joinToken, DataDir: filepath.Join(dir, strconv.Itoa(first+i)),
			Name: fmt.Sprintf("load-%d", first+i), OnAck: onAck, Logger: logger.With("agent", first+i)})
		if err != nil {
			stop()
			f.wg.Wait()
			os.RemoveAll(dir)
			return nil, err
		}
		f.agents[i] = a
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			sem <- struct{}{}
			var released atomic.Bool
			go func() { // release the slot once connected
				for runCtx.Err() == nil && a.Acked() == 0 {
					time.Sleep(50 * time.Millisecond)
				}
				if !released.Swap(true) {
					<-sem
				}
			}()
			if err := a.Run(runCtx); err != nil {
				fmt.Fprintln(os.Stderr, "agent:", err)
			}
		}()
	}
	return f, nil
}

// agentLogger returns where the agents log: with AGENTLOAD_AGENT_LOG set,
// what they log from Info up goes to that file (suffixed with the first agent's
// index, one file per load process), so that the reasons behind slow
// connections can be read; otherwise nowhere.
func agentLogger(first int) (*slog.Logger, error) {
	path := os.Getenv("AGENTLOAD_AGENT_LOG")
	if path == "" {
		return slog.New(slog.DiscardHandler), nil
	}
	file, err := os.OpenFile(fmt.Sprintf("%s.%d", path, first), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(file, &slog.HandlerOptions{Level: slog.LevelInfo})), nil
}

func (f *localFleet) status() (connected, back int, err error) {
	f.mu.Lock()
	marks := f.marks
	f.mu.Unlock()
	for i, a := range f.agents {
		n := a.Acked()
		if n > 0 {
			connected++
		}
		if marks != nil && n > marks[i]+1 { // +1: an ack may have been in flight at the kill
			back++
		}
	}
	return connected, back, nil
}

func (f *localFleet) measure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.measuring, f.rtts = true, nil
	return nil
}

func (f *localFleet) samples() ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.measuring = false
	out := f.rtts
	f.rtts = nil
	return out, nil
}

func (f *localFleet) mark() error {
	marks := make([]uint64, len(f.agents))
	for i, a := range f.agents {
		marks[i] = a.Acked()
	}
	f.mu.Lock()
	f.marks = marks
	f.mu.Unlock()
	return nil
}

func (f *localFleet) pid() int { return os.Getpid() }

func (f *localFleet) stop() error {
	f.stopFn()
	f.wg.Wait()
	return os.RemoveAll(f.dir)
}

// The parent drives a child over the child's stdin and stdout: one
// command a line, one JSON answer a line.
const (
	cmdStatus  = "status"
	cmdMeasure = "measure"
	cmdSamples = "samples"
	cmdMark    = "mark"
	cmdStop    = "stop"
)

// answer is a child's reply to one command.
type answer struct {
	Connected int     `json:"connected"`
	Back      int     `json:"back"`
	SamplesUs []int64 `json:"samples_us,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// serveChild runs a fleet for the parent, answering its commands until
// stop or the end of stdin.
func serveChild(f fleet, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var a answer
		var err error
		switch sc.Text() {
		case cmdStatus:
			a.Connected, a.Back, err = f.status()
		case cmdMeasure:
			err = f.measure()
		case cmdSamples:
			a.SamplesUs, err = f.samples()
		case cmdMark:
			err = f.mark()
		case cmdStop:
			err = f.stop()
			if err != nil {
				a.Error = err.Error()
			}
			return enc.Encode(a)
		default:
			err = fmt.Errorf("unknown command %q", sc.Text())
		}
		if err != nil {
			a.Error = err.Error()
		}
		if err := enc.Encode(a); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return f.stop() // the parent went away
}

// childFleet is a child process of this tool running a localFleet.
type childFleet struct {
	name string    // for errors
	cmd  *exec.Cmd // nil: not a process (tests)
	in   io.WriteCloser
	out  *bufio.Reader
	mu   sync.Mutex
}

// startChild starts this tool as a child running n agents, under
// taskset -c cpus when cpus is set.
func startChild(hub, joinToken string, first, n, enrolling int, cpus string) (*childFleet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{self, "-child", "-hub", hub, "-join-token", joinToken, "-first", strconv.Itoa(first), "-n", strconv.Itoa(n),
		"-enrolling", strconv.Itoa(enrolling)}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start load process: %w", err)
	}
	// Large: a child's samples come in one line.
	return &childFleet{name: fmt.Sprintf("load process %d", cmd.Process.Pid), cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}, nil
}

func (c *childFleet) pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

func (c *childFleet) call(cmd string) (answer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var a answer
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return a, fmt.Errorf("%s: %w", c.name, err)
	}
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return a, fmt.Errorf("%s: %w", c.name, err)
	}
	if err := json.Unmarshal(line, &a); err != nil {
		return a, fmt.Errorf("%s: %w", c.name, err)
	}
	if a.Error != "" {
		return a, fmt.Errorf("%s: %s", c.name, a.Error)
	}
	return a, nil
}

func (c *childFleet) status() (int, int, error) {
	a, err := c.call(cmdStatus)
	return a.Connected, a.Back, err
}

func (c *childFleet) measure() error { _, err := c.call(cmdMeasure); return err }

func (c *childFleet) samples() ([]int64, error) {
	a, err := c.call(cmdSamples)
	return a.SamplesUs, err
}

func (c *childFleet) mark() error { _, err := c.call(cmdMark); return err }

func (c *childFleet) stop() error {
	_, err := c.call(cmdStop)
	c.in.Close()
	if c.cmd == nil {
		return err
	}
	if werr := c.cmd.Wait(); err == nil {
		err = werr
	}
	return err
}

// fleets runs a command on every fleet at once and returns the first error.
func fleets(fs []fleet, do func(fleet) error) error {
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = do(f) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// totals sums the status of every fleet.
func totals(fs []fleet) (connected, back int, err error) {
	var mu sync.Mutex
	err = fleets(fs, func(f fleet) error {
		c, b, err := f.status()
		mu.Lock()
		connected, back = connected+c, back+b
		mu.Unlock()
		return err
	})
	return connected, back, err
}
