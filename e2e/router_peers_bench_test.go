package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/logbench"
)

// BenchmarkRouterSideBySide runs Wharf's router (agent/router, served by
// e2e/routerbench), nginx and HAProxy in front of the same keep-alive
// backend, for the same load generator: each proxy pinned to CPU 0, the
// backend and the load to CPU 1. Per proxy and mode (HTTP/1.1 keep-alive,
// TCP echo): req/s with 64 connections, the proxy's CPU per request (user
// plus system time of the proxy's processes, from /proc), and the
// latency it adds to a single connection's requests (p50, p99) over the
// backend reached directly. Rounds interleave the proxies, rotating their
// order; the medians are reported.
//
//	go test -run '^$' -bench RouterSideBySide -benchtime 1x ./e2e
//
// WHARF_PEERS_ROUNDS (3) and WHARF_PEERS_SECONDS (5) set the rounds and
// the length of each throughput run. Without nginx or haproxy installed
// the benchmark is skipped, or fails with WHARF_REQUIRE_PEERS=1.
func BenchmarkRouterSideBySide(b *testing.B) {
	nginx, haproxy := lookPeer("nginx"), lookPeer("haproxy")
	if nginx == "" || haproxy == "" {
		msg := "nginx and haproxy are needed (apt-get install nginx-light libnginx-mod-stream haproxy)"
		if os.Getenv("WHARF_REQUIRE_PEERS") == "1" {
			b.Fatal(msg + " and WHARF_REQUIRE_PEERS=1")
		}
		b.Skip(msg)
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Fatal("taskset (util-linux) is needed to pin the processes")
	}
	rounds, secs := envInt("WHARF_PEERS_ROUNDS", 3), envInt("WHARF_PEERS_SECONDS", 5)
	dir := b.TempDir()
	bin := filepath.Join(dir, "routerbench")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "./routerbench").CombinedOutput(); err != nil {
		b.Fatalf("build routerbench: %v\n%s", err, out)
	}
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	beHTTP, beTCP := port(), port()
	pinned(b, dir, "backend", "1", bin, "backend", "-http", hostPort(beHTTP), "-tcp", hostPort(beTCP))
	waitListening(b, beHTTP, beTCP)

	type target struct {
		name          string
		pid           int
		httpP, tcpP   int // 0: not served
		cpuHTTP, cpuT []float64
	}
	direct := &target{name: "direct", httpP: beHTTP, tcpP: beTCP}
	wh, wt := port(), port()
	wharf := &target{name: "wharf", httpP: wh, tcpP: wt,
		pid: pinned(b, dir, "wharf", "0", bin, "router", "-http", hostPort(wh), "-backend", hostPort(beHTTP),
			"-tcp-port", strconv.Itoa(wt), "-tcp-backend", hostPort(beTCP))}
	waitListening(b, wh, wt)
	nh, nt := port(), port()
	stream := "/usr/lib/nginx/modules/ngx_stream_module.so"
	if _, err := os.Stat(stream); err != nil {
		b.Logf("nginx has no stream module (%s): nginx is measured on HTTP only", stream)
		stream, nt = "", 0
	}
	ngDir := filepath.Join(dir, "nginx")
	os.MkdirAll(filepath.Join(ngDir, "tmp"), 0o777)
	os.Chmod(filepath.Join(ngDir, "tmp"), 0o777)
	writeFile(b, filepath.Join(ngDir, "nginx.conf"), nginxConf(ngDir, stream, nh, nt, beHTTP, beTCP))
	ng := &target{name: "nginx", httpP: nh, tcpP: nt,
		pid: pinned(b, dir, "nginx", "0", nginx, "-p", ngDir, "-c", filepath.Join(ngDir, "nginx.conf"), "-e", filepath.Join(ngDir, "error.log"))}
	waitListening(b, nh, nt)
	hh, ht := port(), port()
	writeFile(b, filepath.Join(dir, "haproxy.cfg"), haproxyConf(hh, ht, beHTTP, beTCP))
	hp := &target{name: "haproxy", httpP: hh, tcpP: ht,
		pid: pinned(b, dir, "haproxy", "0", haproxy, "-db", "-f", filepath.Join(dir, "haproxy.cfg"))}
	waitListening(b, hh, ht)

	type sample struct{ rps, cpuUs, p50, p99 float64 }
	results := map[string][]sample{} // "wharf/http" -> one per round
	load := func(args ...string) loadResult {
		out, err := exec.Command("taskset", append([]string{"-c", "1", bin, "load"}, args...)...).Output()
		if err != nil {
			b.Fatalf("load %v: %v", args, err)
		}
		var r loadResult
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatalf("load output %q: %v", out, err)
		}
		return r
	}
	targets := []*target{direct, wharf, ng, hp}
	b.ResetTimer()
	for round := 0; round < rounds; round++ {
		order := append(targets[round%len(targets):], targets[:round%len(targets)]...)
		order = slices.Clone(order)
		for _, mode := range []string{"http", "tcp"} {
			for _, t := range order {
				p := t.httpP
				extra := []string{}
				if mode == "tcp" {
					p, extra = t.tcpP, []string{"-tcp"}
				}
				if p == 0 {
					continue
				}
				args := append([]string{"-addr", hostPort(p)}, extra...)
				cpu0 := treeCPU(b, t.pid)
				tp := load(append(args, "-c", "64", "-d", fmt.Sprintf("%ds", secs))...)
				cpu1 := treeCPU(b, t.pid)
				lat := load(append(args, "-c", "1", "-d", "2s")...)
				if tp.Errors > 0 || lat.Errors > 0 || tp.Requests == 0 {
					b.Fatalf("%s %s: %d and %d connections failed (%d requests)", t.name, mode, tp.Errors, lat.Errors, tp.Requests)
				}
				s := sample{rps: tp.RPS, p50: lat.P50us, p99: lat.P99us}
				if t.pid != 0 {
					s.cpuUs = float64((cpu1 - cpu0).Microseconds()) / float64(tp.Requests)
				}
				results[t.name+"/"+mode] = append(results[t.name+"/"+mode], s)
			}
		}
	}
	b.StopTimer()
	med := func(key string, f func(sample) float64) float64 {
		var v []float64
		for _, s := range results[key] {
			v = append(v, f(s))
		}
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%d rounds, %d s throughput runs (64 connections), 2 s latency runs (1 connection); medians; load average at the end: %s\n", rounds, secs, loadAvg())
	fmt.Fprintf(&sb, "| mode | proxy | req/s | proxy CPU µs/req | added p50 µs | added p99 µs |\n|---|---|---|---|---|---|\n")
	for _, mode := range []string{"http", "tcp"} {
		d50, d99 := med("direct/"+mode, func(s sample) float64 { return s.p50 }), med("direct/"+mode, func(s sample) float64 { return s.p99 })
		fmt.Fprintf(&sb, "| %s | direct | %.0f | - | (p50 %.0f) | (p99 %.0f) |\n", mode, med("direct/"+mode, func(s sample) float64 { return s.rps }), d50, d99)
		for _, t := range targets[1:] {
			k := t.name + "/" + mode
			if len(results[k]) == 0 {
				continue
			}
			rps, cpu := med(k, func(s sample) float64 { return s.rps }), med(k, func(s sample) float64 { return s.cpuUs })
			fmt.Fprintf(&sb, "| %s | %s | %.0f | %.1f | %.0f | %.0f |\n", mode, t.name, rps, cpu,
				med(k, func(s sample) float64 { return s.p50 })-d50, med(k, func(s sample) float64 { return s.p99 })-d99)
			b.ReportMetric(rps, t.name+"_"+mode+"_rps")
			b.ReportMetric(cpu, t.name+"_"+mode+"_cpu_us/req")
		}
	}
	ratio := func(a, c string, f func(sample) float64) float64 {
		if x := med(c, f); x > 0 {
			return med(a, f) / x
		}
		return 0
	}
	rpsF, cpuF := func(s sample) float64 { return s.rps }, func(s sample) float64 { return s.cpuUs }
	fmt.Fprintf(&sb, "wharf/nginx HTTP: %.2f× req/s, %.2f× CPU per request; wharf/haproxy TCP: %.2f× req/s, %.2f× CPU per round trip\n",
		ratio("wharf/http", "nginx/http", rpsF), ratio("wharf/http", "nginx/http", cpuF),
		ratio("wharf/tcp", "haproxy/tcp", rpsF), ratio("wharf/tcp", "haproxy/tcp", cpuF))
	// Printed, not logged: the testing package cuts a benchmark's log
	// to ten lines.
	fmt.Print(sb.String())
}

type loadResult struct {
	Requests, Errors int64
	RPS              float64 `json:"rps"`
	P50us            float64 `json:"p50_us"`
	P99us            float64 `json:"p99_us"`
}

func lookPeer(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func hostPort(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func writeFile(b *testing.B, p, s string) {
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		b.Fatal(err)
	}
}

// pinned starts a process on the given CPUs and stops it (SIGTERM, then
// SIGKILL, by its PID) when the benchmark ends; output goes to dir/name.log.
func pinned(b *testing.B, dir, name, cpus string, args ...string) int {
	b.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("taskset", append([]string{"-c", cpus}, args...)...) // taskset execs: the PID is the process's
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	return cmd.Process.Pid
}

func waitListening(b *testing.B, ports ...int) {
	b.Helper()
	for _, p := range ports {
		if p == 0 {
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", hostPort(p))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("nothing listens on port %d: %v", p, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// treeCPU is the CPU time of pid and its children (nginx's workers).
func treeCPU(b *testing.B, pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	total, err := logbench.ProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(st), ')')
		if f := strings.Fields(string(st[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if d, err := logbench.ProcCPU(child); err == nil {
				total += d
			}
		}
	}
	return total
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func nginxConf(dir, stream string, httpP, tcpP, beHTTP, beTCP int) string {
	var s strings.Builder
	if stream != "" {
		fmt.Fprintf(&s, "load_module %s;\n", stream)
	}
	fmt.Fprintf(&s, `daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  upstream be { server 127.0.0.1:%[3]d; keepalive 64; keepalive_requests 100000; }
  server {
    listen 127.0.0.1:%[2]d;
    keepalive_requests 100000;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id;
    }
  }
}
`, dir, httpP, beHTTP)
	if stream != "" && tcpP != 0 {
		fmt.Fprintf(&s, "stream { server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; } }\n", tcpP, beTCP)
	}
	return s.String()
}

func haproxyConf(httpP, tcpP, beHTTP, beTCP int) string {
	return fmt.Sprintf(`global
  nbthread 1
  maxconn 4096
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend web
  mode http
  bind 127.0.0.1:%d
  option http-keep-alive
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %%[req.hdr(host)]
  unique-id-format %%[uuid()]
  unique-id-header X-Request-Id
  http-response set-header X-Request-Id %%[unique-id]
  default_backend be
backend be
  mode http
  http-reuse always
  server s1 127.0.0.1:%d
listen echo
  mode tcp
  bind 127.0.0.1:%d
  server e1 127.0.0.1:%d
`, httpP, beHTTP, tcpP, beTCP)
}
