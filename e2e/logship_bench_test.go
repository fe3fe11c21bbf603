package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/e2e/logbench"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// BenchmarkLogShipping: an exec instance prints 1M lines of 200 bytes as
// fast as it can; a `wharf agent` process captures them (from the file the
// exec driver writes), buffers them on disk and ships them to a one-node
// hub, which keeps them. Measured: the agent process's CPU time from the
// app's creation until the hub acknowledged every line, and the wall time.
// Then rsyslog (imfile → omfwd over TCP to a counting sink) reads the very
// same file, in the same run. Both are reported per CPU-second of the
// shipper process over the same bytes (the file's, timestamps included).
//
//	go test -run '^$' -bench LogShipping -benchtime 1x ./e2e
func BenchmarkLogShipping(b *testing.B) {
	const lines, size = 1_000_000, 200
	ctx := context.Background()
	bin := drivertest.BuildTestApp(b)
	for i := 0; i < b.N; i++ {
		c, admin, jt := benchCluster(b, 1)
		dir := b.TempDir()
		ports := freePorts(b, 2)
		cmd := exec.Command(wharfBin, "agent", "--hub", c.Nodes[0].QUICAddr(), "--token", jt.Token, "--data-dir", dir, "--pool", "p",
			"--name", "bench", "--driver", "exec", "--local-addr", fmt.Sprintf("127.0.0.1:%d", ports[0]),
			"--gossip-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--router-http-addr", "", "--router-https-addr", "",
			"--metrics=false", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		b.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); <-done })
		health := func() agent.Health {
			var h agent.Health
			getJSON(fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[0]), &h)
			return h
		}
		hubtest.WaitFor(b, 30*time.Second, "the agent connected", func() bool { return health().Connected })
		w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
		spec := apitypes.AppSpec{Name: "flood", Command: []string{bin}, Instances: intp(1), Ports: []apitypes.Port{{ContainerPort: 8080}},
			Env: map[string]string{"TESTAPP_PRINT": "0", "TESTAPP_PRINT_COUNT": strconv.Itoa(lines), "TESTAPP_PRINT_SIZE": strconv.Itoa(size)}}
		b.Cleanup(func() { scaleToZero(b, admin, "flood") })
		cpu0, err := logbench.ProcCPU(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := admin.Apps().Create(ctx, spec, w); err != nil {
			b.Fatal(err)
		}
		hubtest.WaitFor(b, 10*time.Minute, "every line captured and acknowledged", func() bool {
			h := health()
			return h.LogsCaptured >= lines && h.LogsUnacked == 0
		})
		wall := time.Since(start)
		cpu1, _ := logbench.ProcCPU(cmd.Process.Pid)
		h := health()
		// (The instance also says a word or two when it starts.)
		if h.LogsDropped != 0 || h.LogsCaptured < lines || h.LogsCaptured > lines+10 {
			b.Fatalf("captured %d, dropped %d of %d", h.LogsCaptured, h.LogsDropped, lines)
		}
		if st := c.Nodes[0].Hub().LogStats(); st.Records != int64(h.LogsCaptured) {
			b.Fatalf("the hub keeps %d records, the agent captured %d", st.Records, h.LogsCaptured)
		}
		is, _, err := admin.Apps().Instances(ctx, "flood", q)
		if err != nil || len(is) != 1 {
			b.Fatalf("instances: %v %v", is, err)
		}
		file := filepath.Join(dir, "exec", is[0].ID, "stdout.log")
		fi, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		mib := float64(fi.Size()) / (1 << 20)
		agentCPU := cpu1 - cpu0
		b.ReportMetric(mib/wall.Seconds(), "wharf-MiB/s")
		b.ReportMetric(mib/agentCPU.Seconds(), "wharf-MiB/s/core")
		b.Logf("wharf: %d lines, %.1f MiB file, wall %s, agent CPU %s: %.1f MiB/s, %.1f MiB/s per agent core",
			lines, mib, wall.Round(time.Millisecond), agentCPU.Round(time.Millisecond), mib/wall.Seconds(), mib/agentCPU.Seconds())

		// rsyslog reads a copy of the file (stopping the app removes the
		// instance's directory), made after the last line was written.
		copied := filepath.Join(b.TempDir(), "stdout.log")
		if out, err := exec.Command("cp", file, copied).CombinedOutput(); err != nil {
			b.Fatalf("copy %s: %v %s", file, err, out)
		}
		scaleToZero(b, admin, "flood")
		data, err := os.ReadFile(copied)
		if err != nil {
			b.Fatal(err)
		}
		rs, err := rsyslogRun(b, copied, bytes.Count(data, []byte("\n")))
		if errors.Is(err, logbench.ErrNoRsyslogd) {
			b.Logf("rsyslog: not installed, no comparison")
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rs.MiBps, "rsyslog-MiB/s")
		b.ReportMetric(rs.MiBpsPerCore, "rsyslog-MiB/s/core")
		b.Logf("rsyslog imfile→omfwd on the same file: wall %s, CPU %s: %.1f MiB/s, %.1f MiB/s per core",
			rs.Wall.Round(time.Millisecond), rs.CPU.Round(time.Millisecond), rs.MiBps, rs.MiBpsPerCore)
	}
}

// rsyslogRun ships file with rsyslog (imfile → omfwd → a counting sink)
// and checks every line arrived once.
func rsyslogRun(b *testing.B, file string, lines int) (logbench.RsyslogRun, error) {
	sink, err := logbench.NewSink()
	if err != nil {
		return logbench.RsyslogRun{}, err
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rs, err := logbench.RunRsyslog(ctx, b.TempDir(), []string{file}, sink.Addr(), int64(lines), sink)
	if err != nil {
		return rs, err
	}
	if n := sink.Count(); n != int64(lines) {
		return rs, fmt.Errorf("rsyslog delivered %d of %d lines", n, lines)
	}
	return rs, nil
}
