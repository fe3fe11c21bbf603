// Command testapp is the tiny HTTP server that the driver conformance suite
// runs as an instance. It is static, has no dependencies and listens on $PORT
// (default 8080).
//
//	/               version=$VERSION instance=$HOSTNAME hostname=<uname> pid=<pid> boot=<random>
//	/env?k=NAME     the value of NAME (404 when unset)
//	/healthz        200, or 500 when FAIL_HEALTH=1
//	/log?line=X[&stream=stderr]  writes X and a newline to stdout (or stderr)
//	/exit?code=N    exits with code N
//	/burn?s=N       keeps one core busy for N seconds
//	/spawn          starts a child copy of itself that sleeps forever; answers its pid
//
// With TESTAPP_MODE=echo it is instead a raw TCP echo server on $PORT.
//
// With TESTAPP_PRINT=N it also prints numbered lines "line 00000001 ..."
// to stdout, N per second (0: as fast as it can), TESTAPP_PRINT_COUNT of
// them (default unbounded), each TESTAPP_PRINT_SIZE bytes long with its
// newline (default 32).
//
// "testapp exec ..." is what exec tests run in an instance (exec.go).
//
// "testapp check" is a command health check: it exits 0 when /healthz on
// $PORT answers 200, else 1.
//
// The boot token changes with every process start, so a test can tell an
// adopted instance from a restarted one.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		os.Exit(execProbe(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "check" { // a command health check: GET /healthz
		port := os.Getenv("PORT")
		if port == "" {
			port = "8080"
		}
		resp, err := http.Get("http://127.0.0.1:" + port + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("TESTAPP_SLEEP") == "1" {
		for { // not select{}: the runtime would call that a deadlock and exit
			time.Sleep(time.Hour)
		}
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if v, ok := os.LookupEnv("TESTAPP_PRINT"); ok {
		go printLines(v, os.Getenv("TESTAPP_PRINT_COUNT"), os.Getenv("TESTAPP_PRINT_SIZE"))
	}
	if os.Getenv("TESTAPP_MODE") == "echo" { // a raw TCP echo server
		echo(port)
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	boot := hex.EncodeToString(b[:])
	uname, _ := os.Hostname()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "version=%s instance=%s hostname=%s pid=%d boot=%s\n",
			os.Getenv("VERSION"), os.Getenv("HOSTNAME"), uname, os.Getpid(), boot)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.URL.Query().Get("k"))
		if !ok {
			http.Error(w, "unset", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("FAIL_HEALTH") == "1" {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		out := os.Stdout
		if r.URL.Query().Get("stream") == "stderr" {
			out = os.Stderr
		}
		fmt.Fprintln(out, r.URL.Query().Get("line"))
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("s"))
		if err != nil || secs < 1 || secs > 60 {
			http.Error(w, "bad s", http.StatusBadRequest)
			return
		}
		go func() { // one core busy for secs seconds
			end := time.Now().Add(time.Duration(secs) * time.Second)
			for x := 0; time.Now().Before(end); x++ {
				_ = x * x
			}
		}()
		fmt.Fprintln(w, "burning")
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "bad code", http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "bye")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(50 * time.Millisecond)
			os.Exit(code)
		}()
	})
	mux.HandleFunc("/spawn", func(w http.ResponseWriter, r *http.Request) {
		self, err := os.Executable()
		if err != nil {
			self = os.Args[0]
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), "TESTAPP_SLEEP=1")
		if err := cmd.Start(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		go func() { _ = cmd.Wait() }()
		fmt.Fprint(w, cmd.Process.Pid)
	})

	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stdout, "testapp listening on :%s\n", port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func echo(port string) {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// printLines writes numbered lines to stdout (see the package comment).
func printLines(rateS, countS, sizeS string) {
	rate, _ := strconv.Atoi(rateS)
	count, err := strconv.Atoi(countS)
	if err != nil || count <= 0 {
		count = 1 << 62
	}
	size, err := strconv.Atoi(sizeS)
	if err != nil || size < 15 {
		size = 32
	}
	line := make([]byte, size)
	for i := range line {
		line[i] = 'x'
	}
	copy(line, "line ")
	line[size-1] = '\n'
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
	}
	for n := 1; n <= count; n++ {
		copy(line[5:], fmt.Sprintf("%08d ", n))
		w.Write(line)
		if tick != nil {
			w.Flush()
			<-tick.C
		}
	}
	w.Flush()
}
