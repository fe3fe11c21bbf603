package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/wharf-platform/wharf/pkg/client"
)

// hubProc is a single-node hub this tool started.
type hubProc struct {
	bin, dir   string
	api, quic  string
	token      string
	cmd        *exec.Cmd
	log        bytes.Buffer
	httpP, qP  int
	raftP, gsP int
	// cpus, when set, is the taskset -c list the hub runs on; env is
	// added to its environment.
	cpus string
	env  []string
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startHub(ctx context.Context, bin, cpus string, env []string) (*hubProc, error) {
	dir, err := os.MkdirTemp("", "agentload-hub")
	if err != nil {
		return nil, err
	}
	h := &hubProc{bin: bin, dir: dir, cpus: cpus, env: env, httpP: freePort(), qP: freePort(), raftP: freePort(), gsP: freePort()}
	h.api = fmt.Sprintf("http://127.0.0.1:%d", h.httpP)
	h.quic = fmt.Sprintf("127.0.0.1:%d", h.qP)
	if err := h.launch(); err != nil {
		return nil, err
	}
	anon, _ := client.New(client.Config{Address: h.api, HTTPClient: &http.Client{Timeout: 2 * time.Second}})
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := anon.Bootstrap(ctx)
		if err == nil {
			h.token = b.Token
			return h, nil
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("hub did not bootstrap: %v\n%s", err, h.log.String())
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			h.stop()
			return nil, err
		}
	}
}

func (h *hubProc) launch() error {
	args := []string{h.bin}
	if h.cpus != "" {
		args = []string{"taskset", "-c", h.cpus, h.bin}
	}
	h.cmd = exec.Command(args[0], append(args[1:], "hub", "--bootstrap-expect", "1", "--data-dir", h.dir, "--node-name", "load",
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", h.httpP), "--quic-addr", h.quic,
		"--raft-addr", fmt.Sprintf("127.0.0.1:%d", h.raftP), "--gossip-addr", fmt.Sprintf("127.0.0.1:%d", h.gsP), "--log-level", "error")...)
	h.cmd.Env = append(os.Environ(), h.env...)
	if d := os.Getenv("AGENTLOAD_HUB_DEBUG"); d != "" {
		h.cmd.Args = append(h.cmd.Args, "--debug-addr", d)
	}
	h.cmd.Stdout, h.cmd.Stderr = &h.log, &h.log
	return h.cmd.Start()
}

func (h *hubProc) pid() int { return h.cmd.Process.Pid }

// kill kills the hub with SIGKILL.
func (h *hubProc) kill() {
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.cmd.Wait()
}

// relaunch starts the killed hub again on its data dir, waiting until it
// leads.
func (h *hubProc) relaunch(ctx context.Context) error {
	if err := h.launch(); err != nil {
		return err
	}
	c, _ := client.New(client.Config{Address: h.api, HTTPClient: &http.Client{Timeout: 2 * time.Second}})
	// Generous: a node that replays its log beside thousands of
	// reconnecting agents on a busy machine.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := c.Status(ctx); err == nil && st.State == "leader" {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return errors.New("the restarted hub did not lead within 90s")
}

func (h *hubProc) stop() {
	if h.cmd != nil && h.cmd.Process != nil {
		h.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			h.cmd.Process.Kill()
		}
	}
	os.RemoveAll(h.dir)
}
