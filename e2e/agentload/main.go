// Command agentload runs N real agents (real QUIC connections and the real
// agent code, in one process) against a hub, bounded in count and time, and
// reports enrolment and connection times, heartbeat round trips and the hub
// process's memory and CPU per agent. With -wharf it starts the hub itself
// (one node, on loopback, in a temporary data dir) and, after the steady
// state, kills it with SIGKILL, starts it again on the same data dir and
// times how long all agents take to be back.
//
//	agentload -wharf bin/wharf -n 1000 -duration 30s
//	agentload -api http://127.0.0.1:7480 -token ADMIN -hub 127.0.0.1:7481 -hub-pid PID -n 1000 -duration 30s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

type result struct {
	Agents           int     `json:"agents"`
	Connected        int     `json:"connected"`
	EnrolAllSeconds  float64 `json:"enrol_and_connect_all_seconds"`
	HeartbeatP50ms   float64 `json:"heartbeat_p50_ms"`
	HeartbeatP99ms   float64 `json:"heartbeat_p99_ms"`
	Samples          int     `json:"heartbeat_samples"`
	HubRSSMB         float64 `json:"hub_rss_mb"`
	HubRSSPerAgentKB float64 `json:"hub_rss_per_agent_kb"`
	HubCPUPercent    float64 `json:"hub_cpu_percent_steady"`
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
	flag.Parse()
	if *n < 1 || *n > 20000 || *duration > 5*time.Minute || (*token == "" && *wharf == "") {
		fmt.Fprintln(os.Stderr, "agentload: need -token or -wharf, 1 <= -n <= 20000, -duration <= 5m")
		os.Exit(2)
	}
	raiseFileLimit()
	ctx, cancel := context.WithTimeout(context.Background(), *duration+10*time.Minute)
	defer cancel()
	var h *hubProc
	if *wharf != "" {
		var err error
		h, err = startHub(ctx, *wharf)
		must(err)
		defer h.stop()
		*api, *hub, *token, *pid = h.api, h.quic, h.token, h.pid()
	}

	c, err := client.New(client.Config{Address: *api, Token: *token})
	must(err)
	if _, err := c.Pools().Create(ctx, apitypes.PoolRequest{Name: "load"}); err != nil && apitypes.StatusOf(err) != 409 {
		must(err)
	}
	jt, err := c.JoinTokens().Create(ctx, apitypes.JoinTokenRequest{Pool: "load", Uses: *n, TTL: apitypes.Duration(time.Hour)})
	must(err)
	dir, err := os.MkdirTemp("", "agentload")
	must(err)
	defer os.RemoveAll(dir)

	var mu sync.Mutex
	var rtts []time.Duration
	measuring := false
	onAck := func(d time.Duration) {
		mu.Lock()
		if measuring {
			rtts = append(rtts, d)
		}
		mu.Unlock()
	}
	agents := make([]*agent.Agent, *n)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := time.Now()
	sem := make(chan struct{}, 32) // enrolments in flight
	for i := range agents {
		a, err := agent.New(agent.Config{Hubs: []string{*hub}, Token: jt.Token, DataDir: filepath.Join(dir, strconv.Itoa(i)), Name: fmt.Sprintf("load-%d", i), OnAck: onAck})
		must(err)
		agents[i] = a
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			released := false
			release := func() {
				if !released {
					released = true
					<-sem
				}
			}
			go func() { // release the slot once connected
				for runCtx.Err() == nil && a.Acked() == 0 {
					time.Sleep(50 * time.Millisecond)
				}
				release()
			}()
			if err := a.Run(runCtx); err != nil {
				fmt.Fprintln(os.Stderr, "agent:", err)
			}
		}()
	}
	connected := func() int {
		k := 0
		for _, a := range agents {
			if a.Acked() > 0 {
				k++
			}
		}
		return k
	}
	deadline := time.Now().Add(5 * time.Minute)
	for connected() < *n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	r := result{Agents: *n, Connected: connected(), EnrolAllSeconds: time.Since(start).Seconds()}
	cpu0, t0 := cpuTicks(*pid), time.Now()
	mu.Lock()
	measuring = true
	mu.Unlock()
	time.Sleep(*duration)
	mu.Lock()
	measuring = false
	samples := append([]time.Duration(nil), rtts...)
	mu.Unlock()
	cpu1, t1 := cpuTicks(*pid), time.Now()
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	if len(samples) > 0 {
		r.HeartbeatP50ms = ms(samples[len(samples)/2])
		r.HeartbeatP99ms = ms(samples[len(samples)*99/100])
	}
	r.Samples = len(samples)
	if *pid > 0 {
		r.HubRSSMB = float64(rssKB(*pid)) / 1024
		r.HubRSSPerAgentKB = float64(rssKB(*pid)) / float64(*n)
		r.HubCPUPercent = float64(cpu1-cpu0) / 100 / t1.Sub(t0).Seconds() * 100
	}
	if h != nil {
		before := make([]uint64, len(agents))
		killed := time.Now()
		must(h.restart(ctx))
		fmt.Fprintf(os.Stderr, "agentload: hub restarted and leading %s after the kill\n", time.Since(killed).Round(time.Millisecond))
		for i, a := range agents {
			before[i] = a.Acked()
		}
		back := func() int {
			k := 0
			for i, a := range agents {
				if a.Acked() > before[i]+1 { // +1: an ack may have been in flight at the kill
					k++
				}
			}
			return k
		}
		deadline := time.Now().Add(3 * time.Minute)
		lastLog := time.Now()
		for back() < *n && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			if time.Since(lastLog) >= 5*time.Second {
				lastLog = time.Now()
				fmt.Fprintf(os.Stderr, "agentload: %d of %d back %s after the kill\n", back(), *n, time.Since(killed).Round(time.Second))
			}
		}
		r.Reconnected, r.ReconnectAllSeconds = back(), time.Since(killed).Seconds()
	}
	stop()
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(r)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

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

// cpuTicks reads utime+stime (clock ticks, 100/s) of a process.
func cpuTicks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}
