package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the programs the tests run in hosts: with
// NETLAB_HELPER set it becomes a tiny server instead of running tests.
const (
	helperEnv     = "NETLAB_HELPER"
	helperAddrEnv = "NETLAB_HELPER_ADDR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode, os.Getenv(helperAddrEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// runHelper serves until killed: "echo" answers each line on TCP and
// each datagram on UDP at addr; "sleep" only sleeps.
func runHelper(mode, addr string) error {
	switch mode {
	case "sleep":
		select {}
	case "echo":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		fmt.Println("echo serving on", addr)
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

const echoPort = 7000

// helperCmd returns a command that runs this test binary as a helper in h.
func helperCmd(t testing.TB, h *Host, mode string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(context.Background(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, fmt.Sprintf("%s=0.0.0.0:%d", helperAddrEnv, echoPort))
	return cmd
}

// startEcho starts a TCP+UDP echo server on echoPort in h and waits until
// the test process reaches it.
func startEcho(t testing.TB, h *Host) *exec.Cmd {
	t.Helper()
	cmd := helperCmd(t, h, "echo")
	if err := h.Start(cmd); err != nil {
		t.Fatal(err)
	}
	addr := h.AddrPort(echoPort)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := echo(rootDial, addr, time.Second)
		if err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo server in %s never answered at %s: %v", h.Name(), addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// rootDial dials from the test process (root namespace).
func rootDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// echo connects over TCP and checks one echoed line, all within timeout.
func echo(dial dialFunc, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTrip(c, timeout)
}

// roundTrip writes one line on c and checks it comes back within timeout.
func roundTrip(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	msg := fmt.Sprintf("ping %d\n", time.Now().UnixNano())
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("echo: got %q, want %q", got, msg)
	}
	return nil
}

// udpRoundTrip sends one datagram on a connected UDP socket and checks
// the echo, skipping stale echoes of earlier rounds.
func udpRoundTrip(c net.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	_ = c.SetDeadline(deadline)
	msg := fmt.Sprintf("dgram %d", time.Now().UnixNano())
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) == msg {
			return nil
		}
	}
}

// hostDial dials from inside h.
func hostDial(h *Host) dialFunc { return h.Dial }

func mustReach(t testing.TB, what string, dial dialFunc, addr string) {
	t.Helper()
	if err := echo(dial, addr, 2*time.Second); err != nil {
		t.Errorf("%s: want reachable, got %v", what, err)
	}
}

func mustNotReach(t testing.TB, what string, dial dialFunc, addr string) {
	t.Helper()
	start := time.Now()
	err := echo(dial, addr, 500*time.Millisecond)
	if err == nil {
		t.Errorf("%s: want unreachable, but the echo came back", what)
		return
	}
	if !isTimeoutOrBlocked(err) {
		t.Errorf("%s: want a timeout (dropped), got %v", what, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%s: took %v to fail", what, d)
	}
}

// isTimeoutOrBlocked: a silently dropped packet shows as a timeout (the
// lab never drops in OUTPUT, which would show as EPERM).
func isTimeoutOrBlocked(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}
