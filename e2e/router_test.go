package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/agent/driver/exec"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// routerRig is a 3-node hub and two agents, each with its router on its
// own loopback address (so both can listen on the same TCP route ports),
// running the test app through the exec driver.
type routerRig struct {
	t      *testing.T
	c      *hubtest.Cluster
	admin  *client.Client
	agents []*agent.Agent
	names  []string
	bin    string // the test app for the exec driver ...
	image  string // ... or its image for docker
	w      *client.WriteOptions
	q      *client.QueryOptions
}

// newRouterRig runs the test app through the exec driver, or with
// kind "docker" as containers of a locally built image. No test of the
// rig kills a host, so its liveness is not tight: with a heartbeat a
// second, a host suspected after one second flaps to suspect whenever a
// loaded machine delays a heartbeat, and the scheduler places nothing on a
// suspect host (all of an app on the other one, which the routing tests
// cannot tell from a routing fault).
func newRouterRig(t *testing.T, kind string) *routerRig {
	c, admin, _ := newCluster(t, hubtest.Options{SuspectAfter: 3 * time.Second, DownAfter: 10 * time.Second}, "p", "acme")
	r := &routerRig{t: t, c: c, admin: admin,
		w: &client.WriteOptions{Tenant: "acme"}, q: &client.QueryOptions{Tenant: "acme"}}
	if kind == "docker" {
		r.image = drivertest.BuildTestAppImage(t, dockerDaemon(t).Client())
	} else {
		r.bin = drivertest.BuildTestApp(t)
	}
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	var drivers []func(hostID string) (driver.Driver, error) // one per agent
	var dirs []string
	stopStrays(t, func() []string { return dirs })
	stopLeftovers(t, func() []driver.Driver {
		var ds []driver.Driver
		for i, a := range r.agents {
			if id := a.HostID(); id != "" {
				if d, err := drivers[i](id); err == nil {
					ds = append(ds, d)
				}
			}
		}
		return ds
	})
	for i, name := range []string{"a", "b"} {
		dir := t.TempDir()
		dirs = append(dirs, dir)
		ip := fmt.Sprintf("127.0.%d.%d", 100+i, 2+i)
		newDriver := func(hostID string) (driver.Driver, error) {
			return exec.New(exec.Config{HostID: hostID, DataDir: dir, ShimEnv: []string{"GORACE=atexit_sleep_ms=0"}})
		}
		if kind == "docker" {
			newDriver = func(hostID string) (driver.Driver, error) {
				return docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
			}
		}
		drivers = append(drivers, newDriver)
		a, _ := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: name, DrainDelay: time.Second,
			RouterHTTPAddr: ip + ":0", RouterHTTPSAddr: ip + ":0", NewDriver: newDriver})
		r.agents = append(r.agents, a)
		r.names = append(r.names, name)
	}
	// Delete the apps while the agents run, so that they stop their
	// instances the normal way (a canary in progress refuses a scale, a
	// delete is always taken); stopLeftovers stops whatever remains once
	// the agents are gone.
	t.Cleanup(func() {
		ctx := context.Background()
		as, _, _ := admin.Apps().List(ctx, r.q)
		for _, a := range as {
			if err := admin.Apps().Delete(ctx, a.Name, r.w); err != nil {
				t.Logf("delete app %s at cleanup: %v", a.Name, err)
			}
		}
		end := time.Now().Add(deadline.Scale(30 * time.Second))
		for i, a := range r.agents {
			d, err := drivers[i](a.HostID())
			if err != nil {
				continue
			}
			for time.Now().Before(end) {
				if l, err := d.List(ctx); err != nil || len(l) == 0 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if c, ok := d.(interface{ Close() error }); ok {
				c.Close()
			}
		}
	})
	hubtest.WaitFor(t, 20*time.Second, "two ready hosts", func() bool {
		hs, _, err := admin.Hosts().List(context.Background(), nil)
		return err == nil && len(hs) == 2 && hs[0].State == "ready" && hs[1].State == "ready" && hs[0].MemoryBytes > 0 && hs[1].MemoryBytes > 0
	})
	return r
}

// deploy creates (or updates) an app of the test app.
func (r *routerRig) deploy(spec apitypes.AppSpec) {
	r.t.Helper()
	if r.image != "" {
		spec.Image = r.image
	} else {
		spec.Command = []string{r.bin}
	}
	if spec.Ports == nil {
		spec.Ports = []apitypes.Port{{ContainerPort: 8080}}
	}
	if spec.Health == nil {
		spec.Health = &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}
	}
	hubtest.WaitFor(r.t, 15*time.Second, "app "+spec.Name+" written", func() bool {
		_, _, _, err := r.admin.Apps().Put(context.Background(), spec, r.w)
		return err == nil
	})
}

// ready waits until app has n ready instances of version v (0: any).
func (r *routerRig) ready(app string, v, n int) []apitypes.Instance {
	r.t.Helper()
	var out []apitypes.Instance
	hubtest.WaitFor(r.t, 60*time.Second, fmt.Sprintf("%d ready instances of %s v%d", n, app, v), func() bool {
		is, _, err := r.admin.Apps().Instances(context.Background(), app, r.q)
		if err != nil {
			return false
		}
		out = out[:0]
		for _, i := range is {
			if i.Desired == "run" && i.Ready && (v == 0 || i.Version == v) {
				out = append(out, i)
			}
		}
		return len(out) == n
	})
	return out
}

// httpVia sends a GET for host through agent i's router.
func (r *routerRig) httpVia(i int, host, path string) (int, string, error) {
	return r.requestVia(i, "GET", host, path)
}

// requestVia sends a request (no body) for host through agent i's router.
func (r *routerRig) requestVia(i int, method, host, path string) (int, string, error) {
	addr, _ := r.agents[i].RouterAddrs()
	req, _ := http.NewRequest(method, "http://"+addr+path, nil)
	req.Host = host
	resp, err := routerClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

var routerClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// field returns the value of key in the test app's "k=v k=v" answer.
func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// TestRouter: two agents' routers serve the default route to instances
// on both hosts; an unknown host is a 404; a canary at 10% gets 200 of
// 2,000 requests within five standard deviations; a custom domain with an
// uploaded certificate answers over HTTPS with that certificate; a TCP
// route carries a raw echo; an app scaled to 0 is a 503.
func TestRouter(t *testing.T) {
	for _, kind := range []string{"exec", "docker"} {
		t.Run(kind, func(t *testing.T) { routerFlow(t, newRouterRig(t, kind)) })
	}
}

func routerFlow(t *testing.T, r *routerRig) {
	ctx := context.Background()
	const host = "hello.acme.localhost"
	r.deploy(apitypes.AppSpec{Name: "hello", Instances: intp(4), Env: map[string]string{"VERSION": "1"}})
	insts := r.ready("hello", 1, 4)
	// Which host runs which process: ask each instance directly.
	hostOf := map[string]string{}
	on := map[string]int{}
	for _, i := range insts {
		on[i.HostName]++
	}
	if on["a"] == 0 || on["b"] == 0 {
		t.Fatalf("the 4 instances were placed %v: the routing checks below need both hosts", on)
	}
	for _, i := range insts {
		resp, err := routerClient.Get("http://" + i.Address + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hostOf[field(string(b), "boot")] = i.HostName
	}
	for i := range r.agents {
		seen := map[string]bool{}
		hubtest.WaitFor(t, 10*time.Second, "router "+r.names[i]+" reaches instances on both hosts", func() bool {
			code, body, err := r.httpVia(i, host, "/")
			if err == nil && code == 200 {
				seen[hostOf[field(body, "boot")]] = true
			}
			return seen["a"] && seen["b"]
		})
	}
	if code, _, err := r.httpVia(0, "nobody.acme.localhost", "/"); err != nil || code != http.StatusNotFound {
		t.Fatalf("unknown host: %d %v, want 404", code, err)
	}

	// Canary at 10%.
	r.deploy(apitypes.AppSpec{Name: "hello", Env: map[string]string{"VERSION": "2"},
		Strategy: &apitypes.Strategy{Type: "canary", Canary: 1, Weight: 10}})
	r.ready("hello", 2, 1)
	r.ready("hello", 1, 4)
	hubtest.WaitFor(t, 10*time.Second, "the canary routed", func() bool {
		for k := 0; k < 50; k++ {
			if _, body, _ := r.httpVia(0, host, "/"); field(body, "version") == "2" {
				return true
			}
		}
		return false
	})
	// Each router splits exactly by weight while its route table stays the
	// same. Under load an instance can miss a health check, which changes
	// the table and restarts the rotation: a round during which either
	// router's table changed measures that, not the split, and is run
	// again. The bound is five standard deviations of a binomial count,
	// so it holds for any fair split and fails a wrong weight.
	const total, weight = 2000, 0.10
	round := func() (v2, failed int64) {
		var nv2, nfailed atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < total/8; k++ {
					code, body, err := r.httpVia(w%2, host, "/")
					switch {
					case err != nil || code != 200:
						nfailed.Add(1)
					case field(body, "version") == "2":
						nv2.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return nv2.Load(), nfailed.Load()
	}
	// The routers' counts reach the hub (wharf app stats). They are
	// telemetry kept by the leader outside Raft: a new leader counts from
	// the next reports, so a round whose counts went with a leader change
	// is run again too.
	stats := func() (n, ok uint64) {
		secs, _, err := r.admin.Apps().Stats(ctx, "hello", 5*time.Minute, r.q)
		if err != nil {
			return 0, 0
		}
		for _, s := range secs {
			n += s.Requests
			if len(s.Status) == 5 {
				ok += s.Status[1]
			}
		}
		return n, ok
	}
	leader := func() string {
		st, err := r.admin.Status(ctx)
		if err != nil {
			return ""
		}
		return st.Leader
	}
	var v2, failed int64
	hubtest.WaitUntil(t, 120*time.Second, "a canary round on unchanged route tables, counted in the app's stats", func() error {
		lead := leader()
		before := [2]uint64{r.agents[0].RouterVersion(), r.agents[1].RouterVersion()}
		v2, failed = round()
		if after := [2]uint64{r.agents[0].RouterVersion(), r.agents[1].RouterVersion()}; after != before {
			t.Logf("route tables changed during a canary round (%v -> %v): %d to v2, %d failed; again", before, after, v2, failed)
			return fmt.Errorf("route tables changed during the round: %v -> %v", before, after)
		}
		end := time.Now().Add(deadline.Scale(15 * time.Second))
		for {
			n, ok := stats()
			if n >= total && ok >= total {
				return nil
			}
			if l := leader(); lead == "" || (l != "" && l != lead) {
				t.Logf("the leader changed during a canary round (%q -> %q): %d requests counted; again", lead, l, n)
				return fmt.Errorf("the leader changed (%q -> %q)", lead, l)
			}
			if time.Now().After(end) {
				t.Fatalf("the app's stats count %d requests (%d 2xx) after a canary round of %d, one leader (%s) throughout", n, ok, total, lead)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if failed != 0 {
		t.Fatalf("%d of %d canary requests failed", failed, total)
	}
	t.Logf("the 10%% canary got %d of %d requests", v2, total)
	if tol := 5 * math.Sqrt(total*weight*(1-weight)); math.Abs(float64(v2)-total*weight) > tol {
		t.Fatalf("the 10%% canary got %d of %d requests, want %.0f ± %.0f", v2, total, total*weight, tol)
	}
	// And their access lines follow the app's logs (stream "router").
	hubtest.WaitFor(t, 15*time.Second, "the canary's access lines in the app's logs", func() bool {
		n := 0
		err := r.admin.Apps().Logs(ctx, "hello", client.LogOptions{Tenant: "acme", Grep: `"GET /" 200`, Limit: 5000}, func(l apitypes.LogLine) error {
			if l.Stream == "router" && strings.HasPrefix(l.Instance, "router-") && strings.Contains(l.Line, "instance=hello-") {
				n++
			}
			return nil
		})
		return err == nil && n >= 2000
	})
	if _, err := r.admin.Apps().Promote(ctx, "hello", r.w); err != nil {
		t.Fatal(err)
	}

	// A custom domain with an uploaded certificate, over HTTPS.
	certPEM, keyPEM, pool := testCert(t, "www.example.com")
	if _, err := r.admin.Routes().Add(ctx, "hello", apitypes.RouteRequest{Host: "www.example.com"}, r.w); err != nil {
		t.Fatal(err)
	}
	if _, err := r.admin.Certs().Add(ctx, apitypes.CertRequest{Domain: "www.example.com", Cert: certPEM, Key: keyPEM}, r.w); err != nil {
		t.Fatal(err)
	}
	_, httpsAddr := r.agents[1].RouterAddrs()
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "www.example.com"},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
		}}}
	hubtest.WaitFor(t, 10*time.Second, "https://www.example.com through router b with the uploaded certificate", func() bool {
		resp, err := tlsClient.Get("https://www.example.com/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && field(string(b), "version") == "2" && resp.TLS.PeerCertificates[0].DNSNames[0] == "www.example.com"
	})

	// A TCP route to an echo app.
	r.deploy(apitypes.AppSpec{Name: "echo", Instances: intp(2), Env: map[string]string{"TESTAPP_MODE": "echo"},
		Ports: []apitypes.Port{{ContainerPort: 5432}}, Health: &apitypes.Health{TCP: 5432, Interval: apitypes.Duration(200 * time.Millisecond)}})
	r.ready("echo", 1, 2)
	rt, err := r.admin.Routes().Add(ctx, "echo", apitypes.RouteRequest{TCP: true, TargetPort: 5432}, r.w)
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, _ := r.agents[0].RouterAddrs()
	tcpAddr := net.JoinHostPort(strings.Split(httpAddr, ":")[0], fmt.Sprint(rt.Port))
	hubtest.WaitFor(t, 10*time.Second, "a raw TCP echo through router a's port "+fmt.Sprint(rt.Port), func() bool {
		conn, err := net.DialTimeout("tcp", tcpAddr, time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("ping\n")); err != nil {
			return false
		}
		b := make([]byte, 5)
		_, err = io.ReadFull(conn, b)
		return err == nil && string(b) == "ping\n"
	})

	// Scaled to 0: a fast 503.
	if _, err := r.admin.Apps().Scale(ctx, "hello", 0, r.w); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, 30*time.Second, "503 once hello has no instance", func() bool {
		code, _, err := r.httpVia(0, host, "/")
		return err == nil && code == http.StatusServiceUnavailable
	})
}

// testCert makes a self-signed certificate for name and a pool trusting it.
func testCert(t *testing.T, name string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	kb, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})), pool
}

// load sends rate requests per second for host through the routers
// (alternating) until stop is called, which returns how many were sent and
// the failures.
func (r *routerRig) load(host string, rate int) (stop func() (int, []string)) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // bounded even if never stopped
	var mu sync.Mutex
	var sent int
	var failures []string
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for k := 0; ; k++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				// Every other request is a POST, which the router never
				// retries: only the drain keeps those whole.
				method := "GET"
				if k%2 == 1 {
					method = "POST"
				}
				code, body, err := r.requestVia(k%len(r.agents), method, host, "/")
				mu.Lock()
				defer mu.Unlock()
				sent++
				if err != nil || code != 200 {
					failures = append(failures, fmt.Sprintf("%s %s via %s: %d %v %q", time.Now().Format("15:04:05.000"), method, r.names[k%len(r.agents)], code, err, body))
				}
			}(k)
		}
	}()
	return func() (int, []string) {
		cancel()
		<-done
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return sent, failures
	}
}

// TestRouterZeroLoss: 50 requests/s through both routers during a rolling
// update, a scale-down from 5 to 1 and a host drain: none fails.
func TestRouterZeroLoss(t *testing.T) {
	for _, kind := range []string{"exec", "docker"} {
		t.Run(kind, func(t *testing.T) { zeroLossFlow(t, newRouterRig(t, kind)) })
	}
}

func zeroLossFlow(t *testing.T, r *routerRig) {
	ctx := context.Background()
	const host = "hello.acme.localhost"
	r.deploy(apitypes.AppSpec{Name: "hello", Instances: intp(3), Env: map[string]string{"VERSION": "1"}})
	r.ready("hello", 1, 3)
	hubtest.WaitFor(t, 10*time.Second, "hello routed", func() bool {
		code, _, err := r.httpVia(0, host, "/")
		return err == nil && code == 200
	})
	check := func(what string, stop func() (int, []string)) {
		t.Helper()
		sent, failures := stop()
		t.Logf("%s: %d requests, %d failed", what, sent, len(failures))
		if len(failures) > 0 || sent < 100 {
			t.Fatalf("%s: %d of %d requests failed:\n%s", what, len(failures), sent, strings.Join(failures, "\n"))
		}
	}
	// left waits until app has exactly n instances desired to run, all of
	// version v and ready, and no other instance left at all.
	left := func(v, n int) {
		hubtest.WaitFor(t, 90*time.Second, fmt.Sprintf("exactly %d instances of v%d, nothing else", n, v), func() bool {
			is, _, err := r.admin.Apps().Instances(ctx, "hello", r.q)
			if err != nil || len(is) != n {
				return false
			}
			for _, i := range is {
				if i.Version != v || !i.Ready || i.Desired != "run" {
					return false
				}
			}
			return true
		})
	}

	stop := r.load(host, 50)
	r.deploy(apitypes.AppSpec{Name: "hello", Env: map[string]string{"VERSION": "2"}, Strategy: &apitypes.Strategy{Type: "rolling", MaxSurge: 1}})
	left(2, 3)
	time.Sleep(2 * time.Second)
	check("rolling update v1 -> v2", stop)

	if _, err := r.admin.Apps().Scale(ctx, "hello", 5, r.w); err != nil {
		t.Fatal(err)
	}
	left(2, 5)
	stop = r.load(host, 50)
	time.Sleep(time.Second)
	if _, err := r.admin.Apps().Scale(ctx, "hello", 1, r.w); err != nil {
		t.Fatal(err)
	}
	left(2, 1)
	time.Sleep(2 * time.Second)
	check("scale 5 -> 1", stop)

	if _, err := r.admin.Apps().Scale(ctx, "hello", 4, r.w); err != nil {
		t.Fatal(err)
	}
	left(2, 4)
	stop = r.load(host, 50)
	time.Sleep(time.Second)
	if _, err := r.admin.Hosts().Drain(ctx, r.agents[0].HostID()); err != nil {
		t.Fatal(err)
	}
	hubtest.WaitUntil(t, 90*time.Second, "host a drained, 4 instances on b", func() error {
		is, _, err := r.admin.Apps().Instances(ctx, "hello", r.q)
		if err != nil {
			return err
		}
		ok := len(is) == 4
		var seen []string
		for _, i := range is {
			ok = ok && i.HostName == "b" && i.Ready
			seen = append(seen, fmt.Sprintf("%s on %s v%d %s/%s ready=%v restarts=%d %s %s", i.ID, i.HostName, i.Version, i.Desired, i.State, i.Ready, i.Restarts, i.Reason, i.Message))
		}
		if !ok {
			a, _, _ := r.admin.Apps().Get(ctx, "hello", r.q)
			pending := ""
			if a != nil {
				pending = a.Pending
			}
			return fmt.Errorf("instances: %s; pending: %q", strings.Join(seen, "; "), pending)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	check("drain of host a", stop)
}
