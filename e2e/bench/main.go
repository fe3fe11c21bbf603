// Command apibench drives the same bounded write load against a Wharf hub
// cluster (REST API) or an etcd cluster (gRPC client), so the two can be
// compared side by side on one machine. It lives in its own module so that
// the etcd client never enters Wharf's dependency graph.
//
//	apibench -target wharf -addrs http://127.0.0.1:17480,... -token T -clients 64 -duration 10s
//	apibench -target etcd  -addrs 127.0.0.1:12379,...      -clients 64 -duration 10s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"time"
)

// op performs one write; worker and seq identify it.
type op func(ctx context.Context, worker, seq int) error

// result summarises one run.
type result struct {
	Target    string  `json:"target"`
	Clients   int     `json:"clients"`
	Ops       int     `json:"ops"`
	Errors    int     `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"writes_per_second"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	FirstErr  string  `json:"first_error,omitempty"`
	// ServerCPU is the CPU the processes named by -pids used per write,
	// and ClientCPU this load generator's, in microseconds: with the
	// machine saturated, the writes per second follow their sum.
	ServerCPU float64 `json:"server_cpu_us_per_write,omitempty"`
	ClientCPU float64 `json:"client_cpu_us_per_write,omitempty"`
}

func main() {
	target := flag.String("target", "wharf", "wharf or etcd")
	addrs := flag.String("addrs", "", "comma-separated endpoints; workers spread over them")
	token := flag.String("token", "", "wharf admin token")
	tenant := flag.String("tenant", "bench", "wharf tenant that holds the benchmark apps")
	clients := flag.Int("clients", 1, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "how long to run (bounded)")
	maxOps := flag.Int("max-ops", 2_000_000, "stop after this many operations")
	valueSize := flag.Int("value-size", 256, "etcd value size in bytes")
	pidList := flag.String("pids", "", "comma-separated process ids of the servers, whose CPU per write is reported")
	summary := flag.String("summarize", "", "print a markdown table of the medians in this JSON-lines results file, then exit")
	flag.Parse()
	if *summary != "" {
		if err := summarize(*summary, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "apibench:", err)
			os.Exit(1)
		}
		return
	}
	if *addrs == "" || *clients < 1 || *duration <= 0 || *duration > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "apibench: need -addrs, -clients >= 1 and 0 < -duration <= 10m")
		os.Exit(2)
	}
	pids, err := parsePids(*pidList)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	eps := strings.Split(*addrs, ",")

	var do op
	var closeFn func()
	switch *target {
	case "wharf":
		do, closeFn, err = wharfOp(ctx, eps, *token, *tenant, *clients)
	case "etcd":
		do, closeFn, err = etcdOp(ctx, eps, *clients, *valueSize)
	default:
		err = fmt.Errorf("unknown target %q", *target)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
	defer closeFn()
	srv0, err := serversCPU(pids)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
	cli0 := selfCPU()
	r := run(ctx, do, *clients, *duration, *maxOps)
	r.Target = *target
	if r.Ops > 0 {
		r.ClientCPU = (selfCPU() - cli0) * 1e6 / float64(r.Ops)
		if len(pids) > 0 {
			srv1, err := serversCPU(pids)
			if err != nil {
				fmt.Fprintln(os.Stderr, "apibench:", err)
				os.Exit(1)
			}
			r.ServerCPU = (srv1 - srv0) * 1e6 / float64(r.Ops)
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func run(ctx context.Context, do op, clients int, d time.Duration, maxOps int) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr error
		wg       sync.WaitGroup
		budget   = make(chan struct{}, maxOps)
	)
	for i := 0; i < maxOps; i++ {
		budget <- struct{}{}
	}
	close(budget)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			var nerr int
			var ferr error
			for seq := 0; ; seq++ {
				if _, ok := <-budget; !ok || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				err := do(ctx, w, seq)
				if err != nil {
					if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
						break
					}
					nerr++
					if ferr == nil {
						ferr = err
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += nerr
			if firstErr == nil {
				firstErr = ferr
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	r := result{Clients: clients, Ops: len(lat), Errors: errs, Seconds: el, PerSecond: float64(len(lat)) / el, P50ms: pct(0.50), P99ms: pct(0.99)}
	if firstErr != nil {
		r.FirstErr = firstErr.Error()
	}
	return r
}
