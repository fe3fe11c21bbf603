// Command routerbench is the side-by-side router benchmark's moving parts,
// one per subcommand, so that each can be pinned to a CPU with taskset:
//
//	routerbench backend -http ADDR -tcp ADDR [-size 1024]
//	routerbench router -http ADDR -backend ADDR [-tcp-port N -tcp-backend ADDR] [-cpuprofile FILE]
//	routerbench load -addr ADDR [-host H] [-c 64] [-d 5s] [-tcp] [-size 1024]
//
// backend answers every HTTP/1.1 request on a keep-alive connection with
// a fixed body of -size bytes (a hand-written server: its cost per request
// is a few microseconds, so the proxy in front is what is measured), and
// echoes TCP. router serves a fixed route table (bench.example -> the
// backend, a TCP port -> the TCP backend) through agent/router, the
// agent's own router code. load holds -c keep-alive connections busy for
// -d and prints one JSON line: requests, req/s, p50 and p99 latency (µs),
// errors.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/agent/router"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: routerbench backend|router|load [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "backend":
		err = runBackend(ctx, os.Args[2:])
	case "router":
		err = runRouter(ctx, os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "routerbench:", err)
		os.Exit(1)
	}
}

func runBackend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:0", "HTTP listen address")
	tcpAddr := fs.String("tcp", "", "TCP echo listen address")
	size := fs.Int("size", 1024, "body bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	resp := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", *size, bytes.Repeat([]byte("x"), *size)))
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	go serve(hl, func(c net.Conn) { serveHTTP(c, resp) })
	if *tcpAddr != "" {
		tl, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			return err
		}
		go serve(tl, func(c net.Conn) { defer c.Close(); _, _ = io.Copy(c, c) })
	}
	<-ctx.Done()
	return nil
}

func serve(ln net.Listener, h func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go h(c)
	}
}

// serveHTTP answers each request (headers only: the load sends GETs) with
// resp; pipelined requests get their answers in one write.
func serveHTTP(c net.Conn, resp []byte) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 16<<10)
	var out []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) <= 2 { // the blank line ending a request's headers
			out = append(out, resp...)
			if br.Buffered() == 0 {
				if _, err := c.Write(out); err != nil {
					return
				}
				out = out[:0]
			}
		}
	}
}

func runRouter(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:0", "HTTP listen address")
	backend := fs.String("backend", "", "HTTP backend address")
	tcpPort := fs.Int("tcp-port", 0, "TCP route port (0: none)")
	tcpBackend := fs.String("tcp-backend", "", "TCP backend address")
	bind := fs.String("tcp-bind", "127.0.0.1", "TCP route bind address")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *backend == "" {
		return errors.New("router: -backend is required")
	}
	r, err := router.New(router.Config{HTTPAddr: *httpAddr, TCPBind: *bind, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	tbl := &router.Table{Version: 1,
		Apps: []router.App{{Key: "bench/web", Backends: []router.Backend{{Instance: "web-1", Addr: *backend, Version: 1}}}},
		HTTP: []router.HTTPRoute{{Host: "bench.example", App: "bench/web"}}}
	if *tcpPort != 0 {
		tbl.Apps = append(tbl.Apps, router.App{Key: "bench/echo", Backends: []router.Backend{{Instance: "echo-1", Addr: *tcpBackend, Version: 1}}})
		tbl.TCP = []router.TCPRoute{{Port: *tcpPort, App: "bench/echo"}}
	}
	if err := r.Apply(tbl); err != nil {
		return err
	}
	// The agent collects stats every second; so does this.
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.TakeStats()
			}
		}
	}()
	return r.Run(ctx)
}

// Result is what load prints.
type Result struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	addr := fs.String("addr", "", "address to load")
	host := fs.String("host", "bench.example", "Host header")
	conns := fs.Int("c", 64, "connections")
	dur := fs.Duration("d", 5*time.Second, "duration")
	tcp := fs.Bool("tcp", false, "TCP echo round trips instead of HTTP requests")
	size := fs.Int("size", 1024, "TCP message bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	req := []byte("GET / HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: routerbench\r\n\r\n")
	msg := bytes.Repeat([]byte("m"), *size)
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(*dur)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<16)
			var err error
			if *tcp {
				mine, err = loadTCP(*addr, msg, deadline, mine)
			} else {
				mine, err = loadHTTP(*addr, req, deadline, mine)
			}
			mu.Lock()
			lats = append(lats, mine...)
			if err != nil {
				errs++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	slices.Sort(lats)
	res := Result{Requests: int64(len(lats)), Errors: errs, Seconds: el, RPS: float64(len(lats)) / el}
	if n := len(lats); n > 0 {
		res.P50us = float64(lats[n/2].Microseconds())
		res.P99us = float64(lats[n*99/100].Microseconds())
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func loadHTTP(addr string, req []byte, deadline time.Time, lats []time.Duration) ([]time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return lats, err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline.Add(5 * time.Second))
	br := bufio.NewReaderSize(c, 16<<10)
	for {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return lats, nil
		}
		if _, err := c.Write(req); err != nil {
			return lats, err
		}
		if err := readResponse(br); err != nil {
			return lats, err
		}
		lats = append(lats, time.Since(t0))
	}
}

// readResponse reads one HTTP/1.1 answer: status 200, a Content-Length or
// a chunked body.
func readResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("answer %q", bytes.TrimSpace(line))
	}
	length, chunked := int64(-1), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return err
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		}
	}
	if !chunked {
		if length < 0 {
			return errors.New("answer without a length")
		}
		_, err = br.Discard(int(length))
		return err
	}
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil {
			return err
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

func loadTCP(addr string, msg []byte, deadline time.Time, lats []time.Duration) ([]time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return lats, err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline.Add(5 * time.Second))
	buf := make([]byte, len(msg))
	for {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return lats, nil
		}
		if _, err := c.Write(msg); err != nil {
			return lats, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return lats, err
		}
		lats = append(lats, time.Since(t0))
	}
}
