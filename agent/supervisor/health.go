package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	osexec "os/exec"
	"strconv"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/pkg/wire"
)

// unhealthyGrace: a new instance failing its health check is only
// booting (not ready, no reason) for this long.
const unhealthyGrace = 30 * time.Second

// bootProbe is how often a booting instance (started, never passed its
// check since) is probed, when its interval is longer: it is ready, and
// takes traffic, as soon as it answers, not up to an interval later.
// That is what a scale-up under a burst waits for.
const bootProbe = 50 * time.Millisecond

// health runs an instance's health check when due and updates readiness:
// ready after one success, not ready after three failures in a row.
func (s *Supervisor) health(ctx context.Context, in *wire.Instance, t *tracked, st driver.Status) {
	addr := s.address(st)
	s.mu.Lock()
	cur := t.status
	if r, ok := s.drv.(driver.Readiness); ok {
		// The runtime probes the instance (a Pod's readiness probe):
		// its word is the readiness.
		defer s.mu.Unlock()
		cur.State, cur.Address, cur.Ready = wire.InstanceRunning, addr, r.Ready(st)
		cur.Restarts = max(cur.Restarts, uint32(st.Restarts))
		switch {
		case cur.Ready:
			cur.Message, cur.Reason = "", wire.Reason_REASON_NONE
		case in.Health != nil:
			cur.Message = "not ready: its readiness probe has not passed"
		}
		s.set(in.Id, t, cur)
		return
	}
	if cur.State != wire.InstanceRunning || cur.Address != addr {
		cur.State, cur.Address = wire.InstanceRunning, addr
		if in.Health == nil {
			cur.Ready = true
		}
		s.set(in.Id, t, cur)
	}
	hc := in.Health
	interval := 2 * time.Second
	if hc != nil && hc.IntervalMs > 0 {
		interval = time.Duration(hc.IntervalMs) * time.Millisecond
	}
	if !cur.Ready && t.healthOK == 0 && s.now().Sub(t.started) < unhealthyGrace {
		interval = min(interval, bootProbe)
	}
	due := hc != nil && s.now().Sub(t.lastHC) >= interval
	if due {
		t.lastHC = s.now()
	}
	s.mu.Unlock()
	if !due {
		return
	}
	ok, why := s.check(ctx, in, st)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur = t.status
	if ok {
		t.healthOK, t.healthNo = t.healthOK+1, 0
		cur.Ready, cur.Message, cur.Reason = true, "", wire.Reason_REASON_NONE
	} else {
		t.healthOK, t.healthNo = 0, t.healthNo+1
		wasReady := cur.Ready
		if t.healthNo >= 3 || !cur.Ready {
			cur.Ready, cur.Message = false, "health check: "+why
		}
		// A new instance that is still booting is not unhealthy yet.
		if t.healthNo >= 3 && (wasReady || s.now().Sub(t.started) >= unhealthyGrace) {
			cur.Reason = wire.Reason_REASON_UNHEALTHY
		}
	}
	s.set(in.Id, t, cur)
}

// check runs one HTTP or TCP health check against the instance's port.
func (s *Supervisor) check(ctx context.Context, in *wire.Instance, st driver.Status) (bool, string) {
	hc := in.Health
	timeout := 2 * time.Second
	if hc.TimeoutMs > 0 {
		timeout = time.Duration(hc.TimeoutMs) * time.Millisecond
	}
	if len(hc.Command) > 0 {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		code, err := s.runCheck(ctx, in, st, hc.Command)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("%s exited %d", hc.Command[0], code)
		}
		return true, ""
	}
	port := int(hc.Port)
	if hc.Tcp > 0 {
		port = int(hc.Tcp)
	}
	hostPort := st.Ports[port]
	if hostPort == 0 {
		// exec instances listen on PORT; the driver reports it as the
		// address.
		_, p, _ := net.SplitHostPort(st.Address)
		hostPort, _ = strconv.Atoi(p)
	}
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if hc.Http != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+hc.Http, nil)
		if err != nil {
			return false, err.Error()
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return false, fmt.Sprintf("GET %s: %s", hc.Http, resp.Status)
		}
		return true, ""
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return false, err.Error()
	}
	c.Close()
	return true, ""
}

// runCheck runs a command health check in the instance when the driver can
// (driver.Execer), else on the host with PORT set to the instance's port.
func (s *Supervisor) runCheck(ctx context.Context, in *wire.Instance, st driver.Status, argv []string) (int, error) {
	if ex, ok := s.drv.(driver.Execer); ok {
		return ex.Exec(ctx, in.Id, argv)
	}
	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if _, port, err := net.SplitHostPort(st.Address); err == nil {
		cmd.Env = append(cmd.Env, "PORT="+port)
	}
	for k, v := range in.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range in.SecretEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	err := cmd.Run()
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
