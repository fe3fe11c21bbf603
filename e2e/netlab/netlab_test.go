package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// twoDCs builds datacenters a and b with hosts a1, a2, b1, b2.
func twoDCs(t *testing.T) (*Lab, *DC, *DC) {
	t.Helper()
	Require(t)
	lab := New(t, Options{})
	a, b := lab.AddDC("a"), lab.AddDC("b")
	a.AddHost("a1")
	a.AddHost("a2")
	b.AddHost("b1")
	b.AddHost("b2")
	return lab, a, b
}

func TestTopology(t *testing.T) {
	lab, a, b := twoDCs(t)
	a1, b2 := lab.Host("a1"), lab.Host("b2")
	sub := lab.Subnet()
	if !a.Prefix().Overlaps(sub) || a.Prefix().Bits() != 24 || b.Prefix() == a.Prefix() {
		t.Errorf("prefixes: lab %s, a %s, b %s", sub, a.Prefix(), b.Prefix())
	}
	if want := a.Prefix().Addr().Next(); a.Gateway() != want {
		t.Errorf("gateway of a = %s, want %s", a.Gateway(), want)
	}
	if a1.IP() != a.Gateway().Next() || !b.Prefix().Contains(b2.IP()) {
		t.Errorf("addresses: a1 %s, b2 %s", a1.IP(), b2.IP())
	}
	for _, n := range []string{a.Bridge(), a1.Veth()} {
		if len(n) > 15 || !strings.Contains(n, lab.ID()) {
			t.Errorf("interface name %q: want ≤15 chars with lab id %s", n, lab.ID())
		}
	}
	if !strings.Contains(a1.NS(), lab.ID()) || a1.DC() != a || a1.Name() != "a1" {
		t.Errorf("a1: ns %s, dc %s, name %s", a1.NS(), a1.DC().Name(), a1.Name())
	}
	// Inside the host: lo up, eth0 with its address, default via .1.
	out, err := a1.Command(context.Background(), "ip", "-4", "-o", "addr").CombinedOutput()
	if err != nil || !strings.Contains(string(out), a1.IP().String()+"/24") || !strings.Contains(string(out), "127.0.0.1") {
		t.Errorf("addresses in a1: %v\n%s", err, out)
	}
	out, err = a1.Command(context.Background(), "ip", "route").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "default via "+a.Gateway().String()) {
		t.Errorf("routes in a1: %v\n%s", err, out)
	}
}

func TestCutAndHeal(t *testing.T) {
	lab, a, _ := twoDCs(t)
	a1, a2, b1, b2 := lab.Host("a1"), lab.Host("a2"), lab.Host("b1"), lab.Host("b2")
	startEcho(t, a1)
	startEcho(t, b1)
	startEcho(t, b2)
	toA1, toB1, toB2 := a1.AddrPort(echoPort), b1.AddrPort(echoPort), b2.AddrPort(echoPort)

	mustReach(t, "b1→a1 before cut", hostDial(b1), toA1)
	mustReach(t, "a1→b1 before cut", hostDial(a1), toB1)
	mustReach(t, "a2→a1 before cut", hostDial(a2), toA1)

	// Flows established before the cut: TCP b1→a1 and UDP b1→a1.
	ctx := context.Background()
	tcp, err := b1.Dial(ctx, "tcp", toA1)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if err := roundTrip(tcp, 2*time.Second); err != nil {
		t.Fatalf("tcp flow before cut: %v", err)
	}
	udp, err := b1.Dial(ctx, "udp", toA1)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if err := udpRoundTrip(udp, 2*time.Second); err != nil {
		t.Fatalf("udp flow before cut: %v", err)
	}

	lab.Cut(a)
	mustNotReach(t, "b1→a1 during cut", hostDial(b1), toA1)
	mustNotReach(t, "a1→b1 during cut", hostDial(a1), toB1)
	mustNotReach(t, "a2→b2 during cut", hostDial(a2), toB2)
	mustReach(t, "a2→a1 during cut (same DC)", hostDial(a2), toA1)
	mustReach(t, "b2→b1 during cut (other side, same DC)", hostDial(b2), toB1)
	mustReach(t, "root→a1 during cut", rootDial, toA1)
	mustReach(t, "root→b1 during cut", rootDial, toB1)
	if err := udpRoundTrip(udp, 500*time.Millisecond); err == nil {
		t.Error("udp flow established before the cut still delivers during the cut")
	}
	if err := roundTrip(tcp, 500*time.Millisecond); err == nil {
		t.Error("tcp flow established before the cut still delivers during the cut")
	}
	lab.Cut(a) // idempotent

	lab.Heal(a)
	mustReach(t, "b1→a1 after heal", hostDial(b1), toA1)
	mustReach(t, "a2→b2 after heal", hostDial(a2), toB2)
	// The same UDP socket (same conntrack entry) delivers again.
	var uerr error
	for range 10 {
		if uerr = udpRoundTrip(udp, 300*time.Millisecond); uerr == nil {
			break
		}
	}
	if uerr != nil {
		t.Errorf("udp flow after heal: %v", uerr)
	}
	lab.Heal(a) // idempotent
}

func TestIsolate(t *testing.T) {
	lab, a, _ := twoDCs(t)
	a1, a2, b1 := lab.Host("a1"), lab.Host("a2"), lab.Host("b1")
	startEcho(t, a1)
	startEcho(t, b1)
	toA1, toB1 := a1.AddrPort(echoPort), b1.AddrPort(echoPort)

	established, err := net.DialTimeout("tcp", toA1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer established.Close()
	if err := roundTrip(established, time.Second); err != nil {
		t.Fatal(err)
	}

	lab.Isolate(a)
	a3 := a.AddHost("a3") // joins isolated
	mustNotReach(t, "root→a1 isolated", rootDial, toA1)
	mustNotReach(t, "a3→b1 isolated", hostDial(a3), toB1)
	mustReach(t, "a3→a1 isolated (same DC)", hostDial(a3), toA1)
	// Both ways silent: a host of the isolated DC gets no packet of the
	// test process either, and the test process gets no send error.
	pc, err := a1.ListenPacket("udp", "0.0.0.0:7200")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out, err := net.Dial("udp", a1.AddrPort(7200))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for range 3 {
		if _, err := out.Write([]byte("hello")); err != nil {
			t.Errorf("send to isolated host: %v, want silent drop", err)
		}
	}
	_ = pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := pc.ReadFrom(make([]byte, 64)); err == nil {
		t.Error("a host of the isolated DC received a datagram from the test process")
	}
	mustNotReach(t, "b1→a1 isolated", hostDial(b1), toA1)
	mustReach(t, "a2→a1 isolated (same DC)", hostDial(a2), toA1)
	mustReach(t, "root→b1 while a isolated", rootDial, toB1)
	if err := roundTrip(established, 500*time.Millisecond); err == nil {
		t.Error("root↔a1 connection established before Isolate still delivers")
	}

	lab.Heal(a)
	mustReach(t, "root→a1 healed", rootDial, toA1)
	mustReach(t, "a3→b1 healed", hostDial(a3), toB1)
	mustReach(t, "b1→a1 healed", hostDial(b1), toA1)
}

func TestCutHost(t *testing.T) {
	lab, _, _ := twoDCs(t)
	a1, a2, b1 := lab.Host("a1"), lab.Host("a2"), lab.Host("b1")
	startEcho(t, a1)
	startEcho(t, a2)
	toA1, toA2 := a1.AddrPort(echoPort), a2.AddrPort(echoPort)

	lab.CutHost(a1)
	mustNotReach(t, "a2→a1 host cut", hostDial(a2), toA1)
	mustNotReach(t, "b1→a1 host cut", hostDial(b1), toA1)
	mustNotReach(t, "root→a1 host cut", rootDial, toA1)
	mustReach(t, "b1→a2 while a1 cut", hostDial(b1), toA2)

	lab.HealHost(a1)
	mustReach(t, "a2→a1 healed", hostDial(a2), toA1)
	mustReach(t, "b1→a1 healed", hostDial(b1), toA1)
}

func TestProcesses(t *testing.T) {
	lab, a, _ := twoDCs(t)
	a1, a2 := lab.Host("a1"), lab.Host("a2")
	srv := startEcho(t, a1)
	pid := srv.Process.Pid

	// The PID is the program itself, in a1's namespace, leading its group.
	exe, _ := os.Executable()
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || got != exe {
		t.Errorf("/proc/%d/exe = %q, %v; want %q", pid, got, err, exe)
	}
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("pgid of %d = %d, %v; want own group", pid, pgid, err)
	}
	var want, got syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+a1.NS(), &want); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got); err != nil || got.Ino != want.Ino {
		t.Errorf("netns of pid %d: inode %d (%v), want %d", pid, got.Ino, err, want.Ino)
	}
	if log, err := os.ReadFile(a1.LogPath()); err != nil || !strings.Contains(string(log), "echo serving on") {
		t.Errorf("log %s: %v\n%s", a1.LogPath(), err, log)
	}

	// Stop: the kernel completes the handshake, nobody answers.
	toA1 := a1.AddrPort(echoPort)
	if err := a1.Stop(); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", toA1, time.Second)
	if err != nil {
		t.Fatalf("dial stopped server: want kernel-level success, got %v", err)
	}
	defer c.Close()
	if err := roundTrip(c, 300*time.Millisecond); err == nil {
		t.Error("stopped server answered")
	}
	if err := a1.Continue(); err != nil {
		t.Fatal(err)
	}
	mustReach(t, "continued server", rootDial, toA1)

	// Kill: gone and reaped; the port is closed.
	done := a1.Done(srv)
	if err := a1.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Fatal("Kill returned before the process was reaped")
	}
	if srv.ProcessState == nil || srv.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("process state after Kill: %v", srv.ProcessState)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Kill = %v, want ESRCH", pid, err)
	}
	if err := echo(rootDial, toA1, time.Second); err == nil || isTimeoutOrBlocked(err) {
		t.Errorf("dial killed server: want refused, got %v", err)
	}
	if n := len(a1.Processes()); n != 0 {
		t.Errorf("%d processes tracked after Kill", n)
	}

	// KillDC, with a stopped process among them.
	p1, p2 := helperCmd(t, a1, "sleep"), helperCmd(t, a2, "sleep")
	for _, x := range []struct {
		h *Host
		c *exec.Cmd
	}{{a1, p1}, {a2, p2}} {
		if err := x.h.Start(x.c); err != nil {
			t.Fatal(err)
		}
	}
	if err := a2.Stop(); err != nil {
		t.Fatal(err)
	}
	d1, d2 := a1.Done(p1), a2.Done(p2)
	if err := lab.KillDC(a); err != nil {
		t.Fatal(err)
	}
	for _, d := range []<-chan struct{}{d1, d2} {
		select {
		case <-d:
		default:
			t.Error("KillDC returned before a process was reaped")
		}
	}
}

// TestCleanup runs a complete lab in a subtest and checks that its
// cleanup left nothing behind.
func TestCleanup(t *testing.T) {
	Require(t)
	var (
		id, stateDir string
		pids         []int
		p            ipt
		fwd          string
	)
	t.Run("lab", func(t *testing.T) {
		lab, a, b := twoDCs(t)
		id, stateDir, p = lab.ID(), lab.store.dir, lab.ipt
		fwd, _ = readSysctl(ipForwardPath)
		if _, err := os.Stat(lab.store.path(id)); err != nil {
			t.Errorf("state file: %v", err)
		}
		for _, h := range []*Host{lab.Host("a1"), lab.Host("b2")} {
			c := helperCmd(t, h, "sleep")
			if err := h.Start(c); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, c.Process.Pid)
		}
		lab.Cut(b)
		lab.Isolate(a)
		lab.CutHost(lab.Host("a2"))
		rules, err := p.list()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rules {
			if r.id == id {
				n++
			}
		}
		if n != 3+2+2+1 { // base, cut b, cut a, isolate a
			t.Errorf("%d rules with the lab id, want 8", n)
		}
	})
	if id == "" {
		t.Fatal("subtest did not build a lab")
	}
	assertGone(t, p, id)
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d alive after cleanup: %v", pid, err)
		}
	}
	if _, err := os.Stat(stateDir + "/" + id + ".pid"); !os.IsNotExist(err) {
		t.Errorf("state file after cleanup: %v", err)
	}
	if now, _ := readSysctl(ipForwardPath); now != fwd {
		t.Errorf("ip_forward = %s after cleanup, was %s", now, fwd)
	}
}

// assertGone fails unless no netns, link or rule carries the lab id.
func assertGone(t *testing.T, p ipt, id string) {
	t.Helper()
	nss, _ := netnsList()
	links, _ := linkList()
	for _, n := range append(nss, links...) {
		if strings.Contains(n, id) {
			t.Errorf("%s of lab %s still exists", n, id)
		}
	}
	out, err := run(p.bin, "-w", "-S")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, id) {
		t.Errorf("iptables rules of lab %s remain:\n%s", id, out)
	}
}

// TestSweep fakes a crashed lab (state file with a dead PID, a namespace
// with an orphan process in it, a bridge, a rule), a crashed lab without
// state file (a link), and a live lab, then checks that New removes the
// dead ones and leaves the live one alone.
func TestSweep(t *testing.T) {
	Require(t)
	dir := t.TempDir()
	store := stateStore{dir: dir}
	p, err := detectIPTables("")
	if err != nil {
		t.Fatal(err)
	}
	dead, noState, live := fakeID(t), fakeID(t), fakeID(t)

	// A PID that is surely dead: a reaped child.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := store.write(labState{id: dead, pid: gone.Process.Pid, start: "1", forward: "1"}); err != nil {
		t.Fatal(err)
	}
	deadNS := nsPrefix + dead + "-x"
	mustRun(t, "ip", "netns", "add", deadNS)
	mustRun(t, "ip", "link", "add", bridgePrefix+dead+"d0", "type", "bridge")
	mustRun(t, p.bin, "-w", "-A", "FORWARD", "-i", bridgePrefix+dead+"d0", "-m", "comment",
		"--comment", commentPrefix+dead+":"+strconv.Itoa(gone.Process.Pid)+":base", "-j", "DROP")
	exe, _ := os.Executable()
	orphan := exec.Command("ip", "netns", "exec", deadNS, exe, "-test.run=^$")
	orphan.Env = append(os.Environ(), helperEnv+"=sleep")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	orphanDone := make(chan struct{})
	go func() {
		_ = orphan.Wait()
		close(orphanDone)
	}()
	t.Cleanup(func() {
		_ = orphan.Process.Kill()
		<-orphanDone
	})

	mustRun(t, "ip", "link", "add", vethPrefix+noState+"h0", "type", "veth", "peer", "name", vethPrefix+noState+"h1")

	start, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.write(labState{id: live, pid: os.Getpid(), start: start, forward: "1"}); err != nil {
		t.Fatal(err)
	}
	liveNS := nsPrefix + live + "-y"
	mustRun(t, "ip", "netns", "add", liveNS)
	t.Cleanup(func() {
		if err := removeLab(p, live, false); err != nil {
			t.Error(err)
		}
		_ = store.remove(live)
	})

	lab := New(t, Options{StateDir: dir})
	_ = lab

	assertGone(t, p, dead)
	assertGone(t, p, noState)
	if _, err := os.Stat(store.path(dead)); !os.IsNotExist(err) {
		t.Errorf("dead lab's state file: %v", err)
	}
	select {
	case <-orphanDone:
	case <-time.After(2 * time.Second):
		t.Error("orphan process in the dead lab's namespace survived the sweep")
	}
	if nss, _ := netnsList(); !slices.Contains(nss, liveNS) {
		t.Errorf("sweep removed the live lab's namespace %s", liveNS)
	}
	if _, err := os.Stat(store.path(live)); err != nil {
		t.Errorf("sweep removed the live lab's state file: %v", err)
	}
}

func fakeID(t *testing.T) string {
	t.Helper()
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := run(name, args...); err != nil {
		t.Fatal(err)
	}
}

// TestTwoLabs checks that two live labs get distinct subnets and work
// side by side.
func TestTwoLabs(t *testing.T) {
	Require(t)
	l1, l2 := New(t, Options{}), New(t, Options{})
	if l1.Subnet().Overlaps(l2.Subnet()) {
		t.Fatalf("subnets overlap: %s, %s", l1.Subnet(), l2.Subnet())
	}
	h1, h2 := l1.AddDC("x").AddHost("h1"), l2.AddDC("x").AddHost("h2")
	startEcho(t, h1)
	startEcho(t, h2)
	// Labs are separate networks: a host of one does not reach the other.
	mustNotReach(t, "lab1 host → lab2 host", hostDial(h1), h2.AddrPort(echoPort))
}

// TestDockerForwardPolicy checks cross-datacenter traffic under a FORWARD
// policy of DROP, as a dockerd sets it (running, or having left its rules
// behind). Skipped when neither is the case: the test never changes the
// policy itself.
func TestDockerForwardPolicy(t *testing.T) {
	Require(t)
	p, err := detectIPTables("")
	if err != nil {
		t.Fatal(err)
	}
	fw, err := run(p.bin, "-w", "-S", "FORWARD")
	if err != nil {
		t.Fatal(err)
	}
	dockerUp := exec.Command("docker", "info").Run() == nil
	policyDrop := strings.Contains(fw, "-P FORWARD DROP")
	if !dockerUp && !policyDrop {
		t.Skip("no dockerd and FORWARD policy ACCEPT: nothing to coexist with")
	}
	t.Logf("dockerd answering: %v; FORWARD policy DROP: %v; iptables: %s", dockerUp, policyDrop, p.bin)
	lab, _, _ := twoDCs(t)
	if p.chainExists("DOCKER-USER") && lab.ForwardChain() != "DOCKER-USER" {
		t.Errorf("forward rules in %s, want DOCKER-USER", lab.ForwardChain())
	}
	a1, b1 := lab.Host("a1"), lab.Host("b1")
	startEcho(t, a1)
	mustReach(t, "b1→a1 under DROP policy", hostDial(b1), a1.AddrPort(echoPort))
	mustReach(t, "a2→a1 under DROP policy", hostDial(lab.Host("a2")), a1.AddrPort(echoPort))
}
