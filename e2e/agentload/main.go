// Command agentload runs N real agents (real QUIC connections and the real
// agent code, each agent with its own connection and certificate) against a
// hub, bounded in count and time, and reports enrolment and connection
// times, heartbeat round trips and the hub process's memory and CPU per
// agent. The agents run in this process, or with -procs P in P child
// processes of it (optionally pinned with -load-cpus, the hub with
// -hub-cpus); the round trips of all of them are merged before the
// percentiles are taken. With -wharf it starts the hub itself
// (one node, on loopback, in a temporary data dir) and, after the steady
// state, kills it with SIGKILL, starts it again on the same data dir and
// times how long all agents take to be back.
//
//	agentload -wharf bin/wharf -n 1000 -duration 30s
//	agentload -wharf bin/wharf -n 10000 -procs 4 -hub-cpus 0 -load-cpus 1 -duration 30s
//	agentload -api http://127.0.0.1:7480 -token ADMIN -hub 127.0.0.1:7481 -hub-pid PID -n 1000 -duration 30s
//
// Environment: AGENTLOAD_HUB_DEBUG=ADDR gives the hub it starts a debug
// address (pprof); with AGENTLOAD_HUB_PROFILE=DIR too, the hub's CPU
// profile of the steady state and its heap profile after it are saved
// there. AGENTLOAD_LOAD_DEBUG=HOST:PORT serves each load process's pprof
// on HOST:PORT+i. AGENTLOAD_AGENT_LOG=PATH makes the agents log (Info and up) into
// PATH.N, one file per load process.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // AGENTLOAD_LOAD_DEBUG
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/e2e/logbench"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

type result struct {
	Agents           int     `json:"agents"`
	Procs            int     `json:"load_processes"`
	Connected        int     `json:"connected"`
	EnrolAllSeconds  float64 `json:"enrol_and_connect_all_seconds"`
	HeartbeatP50ms   float64 `json:"heartbeat_p50_ms"`
	HeartbeatP99ms   float64 `json:"heartbeat_p99_ms"`
	Samples          int     `json:"heartbeat_samples"`
	HubRSSMB         float64 `json:"hub_rss_mb"`
	HubRSSPerAgentKB float64 `json:"hub_rss_per_agent_kb"` // the hub's RSS over the agents connected
	// The hub's RSS before any agent enrolled, and what each connected
	// agent added to it: the idle hub's share of hub_rss_per_agent_kb is
	// ten times larger at 1,000 agents than at 10,000.
	HubRSSIdleMB        float64 `json:"hub_rss_idle_mb"`
	HubRSSAddedPerAgent float64 `json:"hub_rss_added_per_agent_kb"`
	HubCPUPercent       float64 `json:"hub_cpu_percent_steady"`
	// The load processes' CPU in the steady state (100: one core), and
	// whether it came within a tenth of the CPUs they may use: then the
	// heartbeat round trips include the agents' own wait for a CPU, and
	// measure the load as much as the hub.
	LoadCPUPercent float64  `json:"load_cpu_percent_steady"`
	LoadSaturated  bool     `json:"load_saturated,omitempty"`
	HubEnv         []string `json:"hub_env,omitempty"`
	// With -wharf: from the hub's SIGKILL until every agent had a
	// heartbeat acknowledged by the restarted hub.
	ReconnectAllSeconds float64 `json:"reconnect_all_after_hub_restart_seconds,omitempty"`
	Reconnected         int     `json:"reconnected,omitempty"`
}

func main() {
	api := flag.String("api", "http://127.0.0.1:7480", "hub API")
	token := flag.String("token", "", "admin token")
	hub := flag.String("hub", "127.0.0.1:7481", "hub gateway (QUIC)")
	pid := flag.Int("hub-pid", 0, "hub process id, to read its memory and CPU")
	n := flag.Int("n", 100, "agents (at most 20000)")
	duration := flag.Duration("duration", 30*time.Second, "steady-state measurement (at most 5m)")
	wharf := flag.String("wharf", "", "wharf binary: start (and later restart) the hub here instead of using -api/-hub/-token")
	procs := flag.Int("procs", 1, "load processes: with more than 1 the agents run in that many child processes of this tool, n/procs each")
	loadCPUs := flag.String("load-cpus", "", "with -procs > 1: taskset -c list the load processes run on (empty: anywhere)")
	hubCPUs := flag.String("hub-cpus", "", "with -wharf: taskset -c list the hub runs on (empty: anywhere)")
	var hubEnv envFlag
	flag.Var(&hubEnv, "hub-env", "with -wharf: KEY=VALUE added to the hub's environment (repeatable), e.g. GOMEMLIMIT=400MiB")
	enrolling := flag.Int("enrolling", 32, "enrolments in flight, over all load processes")
	child := flag.Bool("child", false, "run as a load process of a parent agentload (internal)")
	joinToken := flag.String("join-token", "", "with -child: the join token")
	first := flag.Int("first", 0, "with -child: index of the first agent (agents are named load-INDEX)")
	flag.Parse()
	raiseFileLimit()
	if *child {
		serveLoadDebug(*first / max(*n, 1))
		f, err := startLocal(context.Background(), *hub, *joinToken, *first, *n, *enrolling)
		must(err)
		must(serveChild(f, os.Stdin, os.Stdout))
		return
	}
	if *n < 1 || *n > 20000 || *duration > 5*time.Minute || (*token == "" && *wharf == "") || *procs < 1 || *procs > *n {
		fmt.Fprintln(os.Stderr, "agentload: need -token or -wharf, 1 <= -n <= 20000, 1 <= -procs <= n, -duration <= 5m")
		os.Exit(2)
	}
	// SIGINT or SIGTERM (a timeout around the run) ends the run early,
	// still stopping the hub and the load processes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	must(run(ctx, opts{api: *api, token: *token, hub: *hub, pid: *pid, n: *n, duration: *duration, wharf: *wharf, procs: *procs,
		loadCPUs: *loadCPUs, hubCPUs: *hubCPUs, hubEnv: hubEnv, enrolling: *enrolling}))
}

// opts are the parent's flags.
type opts struct {
	api, token, hub, wharf   string
	pid, n, procs, enrolling int
	duration                 time.Duration
	loadCPUs, hubCPUs        string
	hubEnv                   []string
}

// envFlag collects KEY=VALUE flags.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// run drives the fleets; the hub it started and the load processes are
// stopped on every return.
func run(ctx context.Context, o opts) error {
	ctx, cancel := context.WithTimeout(ctx, o.duration+10*time.Minute)
	defer cancel()
	var h *hubProc
	if o.wharf != "" {
		var err error
		h, err = startHub(ctx, o.wharf, o.hubCPUs, o.hubEnv)
		if err != nil {
			return err
		}
		defer h.stop()
		o.api, o.hub, o.token, o.pid = h.api, h.quic, h.token, h.pid()
	}

	c, err := client.New(client.Config{Address: o.api, Token: o.token})
	if err != nil {
		return err
	}
	if _, err := c.Pools().Create(ctx, apitypes.PoolRequest{Name: "load"}); err != nil && apitypes.StatusOf(err) != 409 {
		return err
	}
	jt, err := c.JoinTokens().Create(ctx, apitypes.JoinTokenRequest{Pool: "load", Uses: o.n, TTL: apitypes.Duration(time.Hour)})
	if err != nil {
		return err
	}

	var idleKB int64
	if o.pid > 0 {
		idleKB = rssKB(o.pid)
	}
	start := time.Now()
	var fs []fleet
	if o.procs == 1 {
		f, err := startLocal(ctx, o.hub, jt.Token, 0, o.n, o.enrolling)
		if err != nil {
			return err
		}
		fs = append(fs, f)
	} else {
		for i := range o.procs {
			lo, hi := i*o.n/o.procs, (i+1)*o.n/o.procs
			f, err := startChild(o.hub, jt.Token, lo, hi-lo, max(o.enrolling/o.procs, 1), o.loadCPUs)
			if err != nil {
				return err
			}
			fs = append(fs, f)
		}
	}
	defer fleets(fs, fleet.stop) //nolint:errcheck
	deadline := time.Now().Add(5 * time.Minute)
	connected, lastLog := 0, time.Now()
	for connected < o.n && time.Now().Before(deadline) {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
		connected, _, err = totals(fs)
		if err != nil {
			return err
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			fmt.Fprintf(os.Stderr, "agentload: %d of %d connected after %s\n", connected, o.n, time.Since(start).Round(time.Second))
		}
	}
	r := result{Agents: o.n, Procs: o.procs, HubEnv: o.hubEnv, Connected: connected, EnrolAllSeconds: time.Since(start).Seconds()}
	cpu0, load0, t0 := procCPU(o.pid), loadCPU(fs), time.Now()
	if err := fleets(fs, fleet.measure); err != nil {
		return err
	}
	profiled := profileHub(o.duration)
	if err := sleep(ctx, o.duration); err != nil {
		return err
	}
	if err := <-profiled; err != nil {
		fmt.Fprintln(os.Stderr, "agentload: hub profile:", err)
	}
	var mu sync.Mutex
	var samples []int64
	if err := fleets(fs, func(f fleet) error {
		s, err := f.samples()
		mu.Lock()
		samples = append(samples, s...)
		mu.Unlock()
		return err
	}); err != nil {
		return err
	}
	cpu1, load1, t1 := procCPU(o.pid), loadCPU(fs), time.Now()
	r.LoadCPUPercent = (load1 - load0).Seconds() / t1.Sub(t0).Seconds() * 100
	if n := cpuCount(o.loadCPUs); r.LoadCPUPercent > 90*float64(n) {
		r.LoadSaturated = true
		fmt.Fprintf(os.Stderr, "agentload: the load processes used %.0f%% of a CPU, of the %d they may use: the heartbeat round trips include their own wait for a CPU\n", r.LoadCPUPercent, n)
	}
	slices.Sort(samples)
	if len(samples) > 0 {
		r.HeartbeatP50ms = float64(samples[len(samples)/2]) / 1000
		r.HeartbeatP99ms = float64(samples[len(samples)*99/100]) / 1000
	}
	r.Samples = len(samples)
	if o.pid > 0 {
		rss := rssKB(o.pid)
		r.HubRSSMB, r.HubRSSIdleMB = float64(rss)/1024, float64(idleKB)/1024
		if connected > 0 {
			r.HubRSSPerAgentKB = float64(rss) / float64(connected)
			r.HubRSSAddedPerAgent = float64(rss-idleKB) / float64(connected)
		}
		r.HubCPUPercent = (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds() * 100
	}
	// The steady state's numbers, in case the restart below fails.
	fmt.Fprintf(os.Stderr, "agentload: steady state: %+v\n", r)
	if h != nil {
		killed := time.Now()
		h.kill()
		if err := fleets(fs, fleet.mark); err != nil {
			return err
		}
		if err := h.relaunch(ctx); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "agentload: hub restarted and leading %s after the kill\n", time.Since(killed).Round(time.Millisecond))
		deadline := time.Now().Add(3 * time.Minute)
		lastLog := time.Now()
		back := 0
		for back < o.n && time.Now().Before(deadline) {
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
			_, back, err = totals(fs)
			if err != nil {
				return err
			}
			if time.Since(lastLog) >= 5*time.Second {
				lastLog = time.Now()
				fmt.Fprintf(os.Stderr, "agentload: %d of %d back %s after the kill\n", back, o.n, time.Since(killed).Round(time.Second))
			}
		}
		r.Reconnected, r.ReconnectAllSeconds = back, time.Since(killed).Seconds()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// serveLoadDebug, with AGENTLOAD_LOAD_DEBUG=HOST:PORT set, serves this
// load process's pprof on HOST:PORT+i (i: its number among the load
// processes), to see what the agents cost on the load side.
func serveLoadDebug(i int) {
	addr := os.Getenv("AGENTLOAD_LOAD_DEBUG")
	if addr == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	must(err)
	p, err := strconv.Atoi(port)
	must(err)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p+i)))
	must(err)
	go http.Serve(ln, nil) //nolint:errcheck // ends with the process
}

// profileHub, with AGENTLOAD_HUB_DEBUG and AGENTLOAD_HUB_PROFILE (a
// directory) set, saves the hub's CPU profile of the steady state (its
// first d less a second) and then its heap profile there, as hub.cpu and
// hub.heap. The channel tells when both are saved.
func profileHub(d time.Duration) <-chan error {
	done := make(chan error, 1)
	addr, dir := os.Getenv("AGENTLOAD_HUB_DEBUG"), os.Getenv("AGENTLOAD_HUB_PROFILE")
	if addr == "" || dir == "" {
		done <- nil
		return done
	}
	secs := max(int((d-time.Second)/time.Second), 1)
	go func() {
		err := fetchTo(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), filepath.Join(dir, "hub.cpu"))
		if err == nil {
			err = fetchTo(fmt.Sprintf("http://%s/debug/pprof/heap", addr), filepath.Join(dir, "hub.heap"))
		}
		done <- err
	}()
	return done
}

// fetchTo saves what url answers into path.
func fetchTo(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sleep waits for d, or fails when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentload:", err)
		os.Exit(1)
	}
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// rssKB reads VmRSS of a process.
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// loadCPU sums the CPU time of the load processes.
func loadCPU(fs []fleet) time.Duration {
	var t time.Duration
	for _, f := range fs {
		t += procCPU(f.pid())
	}
	return t
}

// cpuCount counts the CPUs of a taskset list ("1", "0-3", "1,3-5"); an
// empty or malformed list means all of them.
func cpuCount(list string) int {
	n := 0
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			return runtime.NumCPU()
		}
		n += b - a + 1
	}
	return n
}

// procCPU is the CPU time a process has used, 0 when pid is not a
// process (no hub pid given) or has gone.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	d, err := logbench.ProcCPU(pid)
	if err != nil {
		return 0
	}
	return d
}
