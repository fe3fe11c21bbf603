package logbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/template"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoRsyslogd is returned (wrapped) by RunRsyslog when no rsyslogd
// binary is installed; callers skip on it.
var ErrNoRsyslogd = errors.New("rsyslogd not found")

// Format is what rsyslogd sends for each line.
type Format uint8

const (
	// FormatRaw sends the line itself ("%msg%\n") with newline framing:
	// the least work rsyslog can do per line, so the fastest honest
	// configuration, and the bytes on the wire are the bytes of the files.
	FormatRaw Format = iota
	// FormatRFC5424 sends RFC 5424 syslog (RSYSLOG_SyslogProtocol23Format:
	// PRI, timestamp, hostname, tag …) with RFC 6587 octet counting.
	FormatRFC5424
)

func (f Format) String() string {
	switch f {
	case FormatRaw:
		return "raw"
	case FormatRFC5424:
		return "rfc5424"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Rsyslog is the configuration of a private rsyslogd run. The zero value is
// what RunRsyslog uses.
//
// Each run writes its own rsyslog.conf (kept in RsyslogRun.Dir) and starts
// "rsyslogd -n -f rsyslog.conf -i rsyslogd.pid" after "rsyslogd -N1" has
// checked it. The pieces of the config and why:
//   - global: the run's own work directory (imfile keeps its state files
//     there, and a new one means every file is read from its beginning);
//     maxMessageSize twice the longest line (at least 8 KiB), so no line is
//     split (imfile would ship the rest of a too-long line as a second
//     message); processInternalMessages on, so rsyslogd's own messages stay
//     in this instance (off would send them to the system's /dev/log) and
//     go to internal.log, never to the sink.
//   - no imuxsock, imklog or imjournal: the only input is imfile, so the
//     instance neither opens /dev/log nor reads the kernel log.
//   - imfile in inotify mode, readMode 0 (one line, one message),
//     reopenOnTruncate and addMetadata off, freshStartTail off,
//     persistStateInterval 0 (state is written only at shutdown, never in
//     the hot path), MaxSubmitAtOnce 1024 (its default batch).
//   - the imfile inputs are bound to the ruleset "ship", which has its own
//     in-memory LinkedList queue of 100,000 messages, dequeued in batches
//     of 1024 by Workers threads. imfile submits with full-delay flow
//     control: when the queue is (nearly) full it waits instead of
//     dropping, so the queue's size cannot lose lines (a million was no
//     faster, and rsyslog warns that it is "very large"); discardSeverity
//     8 and no queue.filename (no disk assistance) mean nothing is
//     discarded or spooled. There is no rate limiting: imfile has none,
//     and repeated-message reduction is off by default.
//   - omfwd over TCP with a direct action queue (the default: the ruleset
//     queue's worker sends), resumeRetryCount -1 (retry forever, never
//     drop) and the template and framing of Format.
type Rsyslog struct {
	// Path is the rsyslogd binary; "" looks for rsyslogd in PATH, then
	// /usr/sbin/rsyslogd.
	Path string
	// Format is the forwarded format; the zero value is FormatRaw.
	Format Format
	// Workers is the number of worker threads of the forwarding queue,
	// each with its own TCP connection; 0 means 1, rsyslog's default (two
	// were no faster here).
	Workers int
	// Timeout bounds a run when ctx has no deadline; 0 means 10 minutes.
	Timeout time.Duration
	// Stall ends a run with an error when no line has arrived for this
	// long; 0 means 30 seconds.
	Stall time.Duration
	// CPUs pins rsyslogd (all its threads) to these CPUs; nil leaves it
	// free to use every CPU.
	CPUs []int
}

// RsyslogRun is the result of one rsyslogd run.
type RsyslogRun struct {
	// Lines is how many messages the sink received during the run.
	Lines int64
	// Bytes is the size of the input files: what had to be shipped.
	Bytes int64
	// Wall is the time from starting rsyslogd to the sink holding every
	// expected line.
	Wall time.Duration
	// CPU is rsyslogd's user+system CPU time over Wall (its whole life:
	// it is a fresh process).
	CPU time.Duration
	// FirstLine is the time from starting rsyslogd to the first line at
	// the sink: start-up, included in Wall.
	FirstLine time.Duration
	// MiBps is Bytes/Wall in MiB per second.
	MiBps float64
	// MiBpsPerCore is Bytes/CPU in MiB per CPU-second.
	MiBpsPerCore float64
	// Dir holds the run's rsyslog.conf, state directory, rsyslogd's
	// output (rsyslogd.out) and internal messages (internal.log).
	Dir string
}

// RunRsyslog runs Rsyslog{}.Run: a private rsyslogd forwarding raw lines.
func RunRsyslog(ctx context.Context, dir string, files []string, sinkAddr string, expectLines int64, sink *Sink) (RsyslogRun, error) {
	return Rsyslog{}.Run(ctx, dir, files, sinkAddr, expectLines, sink)
}

// Run starts a private rsyslogd in a new directory under dir (which must
// exist) that reads files (complete, written before the call) from their
// beginning with imfile and forwards every line over TCP to sinkAddr
// (normally sink.Addr()), and returns when sink has counted expectLines
// more messages than it had at the call. The files must hold at least
// expectLines lines. rsyslogd is killed (SIGKILL, by PID) before Run
// returns, on every path, and by the kernel (Pdeathsig) if the calling
// process dies first. The package doc says what is measured.
func (r Rsyslog) Run(ctx context.Context, dir string, files []string, sinkAddr string, expectLines int64, sink *Sink) (RsyslogRun, error) {
	var run RsyslogRun
	bin, err := r.binary()
	if err != nil {
		return run, err
	}
	if len(files) == 0 || expectLines <= 0 || sink == nil {
		return run, fmt.Errorf("rsyslog run: %d files, %d lines expected, sink %p", len(files), expectLines, sink)
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := r.Timeout
		if timeout <= 0 {
			timeout = 10 * time.Minute
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	host, port, err := net.SplitHostPort(sinkAddr)
	if err != nil {
		return run, fmt.Errorf("sink address: %w", err)
	}
	var in []string
	var lines, longest int64
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return run, err
		}
		if strings.ContainsAny(abs, "\"\\\n") {
			return run, fmt.Errorf("rsyslog run: file name %q: quotes, backslashes and newlines do not fit the config", abs)
		}
		st, err := scanLines(abs)
		if err != nil {
			return run, err
		}
		in = append(in, abs)
		run.Bytes += st.bytes
		lines += st.lines
		longest = max(longest, st.longest)
	}
	if lines < expectLines {
		return run, fmt.Errorf("rsyslog run: files hold %d lines, %d expected", lines, expectLines)
	}

	rdir, err := os.MkdirTemp(dir, "rsyslog-")
	if err != nil {
		return run, err
	}
	run.Dir = rdir
	conf := rsyslogConfig{
		WorkDir:     filepath.Join(rdir, "work"),
		Internal:    filepath.Join(rdir, "internal.log"),
		Files:       in,
		Host:        host,
		Port:        port,
		RFC5424:     r.Format == FormatRFC5424,
		Workers:     1,
		MaxMsgSize:  max(8192, 2*longest),
		QueueSize:   100_000,
		BatchSize:   1024,
		SubmitBatch: 1024,
	}
	if r.Workers > 0 {
		conf.Workers = r.Workers
	}
	if err := os.Mkdir(conf.WorkDir, 0o755); err != nil {
		return run, err
	}
	confPath := filepath.Join(rdir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf.text()), 0o644); err != nil {
		return run, err
	}
	// A config error is reported here, before anything is measured.
	if out, err := exec.CommandContext(ctx, bin, "-N1", "-f", confPath).CombinedOutput(); err != nil {
		return run, fmt.Errorf("rsyslogd -N1 %s: %w\n%s", confPath, err, out)
	}
	outPath := filepath.Join(rdir, "rsyslogd.out")
	out, err := os.Create(outPath)
	if err != nil {
		return run, err
	}
	defer out.Close()

	stall := r.Stall
	if stall <= 0 {
		stall = 30 * time.Second
	}
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)

	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(rdir, "rsyslogd.pid"))
	cmd.Dir = rdir
	cmd.Stdout, cmd.Stderr = out, out
	// The kernel kills rsyslogd if this process dies (a panic, a test
	// binary's timeout). It follows the thread that forks, and Go ends a
	// thread only when a goroutine exits while locked to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	for _, c := range r.CPUs {
		if c < 0 || c >= runtime.NumCPU() {
			return run, fmt.Errorf("rsyslog run: no CPU %d", c)
		}
	}

	base := sink.Count()
	target := base + expectLines
	start := time.Now()
	if err := startPinned(cmd, r.CPUs); err != nil {
		return run, fmt.Errorf("start rsyslogd: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		cancelRun(fmt.Errorf("rsyslogd exited: %v", err))
		close(exited)
	}()
	defer func() {
		cmd.Process.Kill() // by PID; an error means it is gone already
		<-exited
	}()
	var first time.Duration
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		if sink.WaitCount(runCtx, base+1) == nil {
			first = time.Since(start)
		}
	}()
	defer func() { cancelRun(nil); <-firstDone }()

	// Wait in steps of a second to notice a stall; the whole wait is
	// bounded by runCtx, which always has a deadline.
	last, lastMove := base, start
	for {
		step, cancel := context.WithTimeout(runCtx, time.Second)
		err := sink.WaitCount(step, target)
		cancel()
		if err == nil {
			break
		}
		now, got := time.Now(), sink.Count()
		if runCtx.Err() != nil || errors.Is(err, ErrSinkClosed) {
			return run, r.failure(rdir, fmt.Errorf("rsyslog: %d of %d lines after %v: %w", got-base, expectLines, now.Sub(start).Round(time.Millisecond), errors.Join(err, context.Cause(runCtx))))
		}
		if got != last {
			last, lastMove = got, now
		} else if now.Sub(lastMove) > stall {
			return run, r.failure(rdir, fmt.Errorf("rsyslog: stalled at %d of %d lines for %v", got-base, expectLines, stall))
		}
	}
	run.Wall = time.Since(start)
	cpu, err := ProcCPU(pid)
	if err != nil {
		return run, fmt.Errorf("rsyslogd cpu: %w", err)
	}
	run.CPU = cpu
	run.Lines = sink.Count() - base
	<-firstDone // the count passed base+1, so it is done or about to be
	run.FirstLine = first
	mib := float64(run.Bytes) / (1 << 20)
	run.MiBps = mib / run.Wall.Seconds()
	if cpu > 0 {
		run.MiBpsPerCore = mib / cpu.Seconds()
	}
	return run, nil
}

// startPinned starts cmd with the CPU affinity cpus (nil: unchanged). A
// child inherits the affinity of the thread that forks it, so the calling
// goroutine is locked to its thread, that thread pinned for the fork and
// given its old mask back.
func startPinned(cmd *exec.Cmd, cpus []int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("get affinity: %w", err)
	}
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
	}
	err := cmd.Start()
	// Giving back the mask just read does not fail; if it did, this
	// thread would only stay pinned, a scheduling matter.
	_ = unix.SchedSetaffinity(0, &old)
	return err
}

func (r Rsyslog) binary() (string, error) {
	if r.Path != "" {
		if _, err := os.Stat(r.Path); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoRsyslogd, err)
		}
		return r.Path, nil
	}
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/rsyslogd"); err == nil {
		return "/usr/sbin/rsyslogd", nil
	}
	return "", fmt.Errorf("%w in PATH or /usr/sbin (apt-get install rsyslog)", ErrNoRsyslogd)
}

// failure adds the end of rsyslogd's output and internal log to err.
func (r Rsyslog) failure(rdir string, err error) error {
	var b strings.Builder
	for _, name := range []string{"rsyslogd.out", "internal.log"} {
		if tail := fileTail(filepath.Join(rdir, name), 2048); tail != "" {
			fmt.Fprintf(&b, "\n--- %s:\n%s", name, tail)
		}
	}
	if b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w%s", err, b.String())
}

func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-n)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return strings.TrimSpace(string(b))
}

type fileStats struct{ bytes, lines, longest int64 }

// scanLines counts a file's lines and its longest line (with '\n'); an
// unterminated last line counts as a line.
func scanLines(path string) (fileStats, error) {
	var st fileStats
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var cur int64
	// Ends at EOF: a file has finitely many chunks.
	for {
		n, err := f.Read(buf)
		p := buf[:n]
		st.bytes += int64(n)
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				cur += int64(len(p))
				break
			}
			cur += int64(i + 1)
			st.longest = max(st.longest, cur)
			st.lines++
			cur = 0
			p = p[i+1:]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
	}
	if cur > 0 {
		st.lines++
		st.longest = max(st.longest, cur)
	}
	return st, nil
}

// rsyslogConfig is what rsyslogConf writes.
type rsyslogConfig struct {
	WorkDir, Internal string
	Files             []string
	Host, Port        string
	RFC5424           bool
	Workers           int
	MaxMsgSize        int64
	QueueSize         int
	BatchSize         int
	SubmitBatch       int
}

// rsyslogConf is the config of a run; the Rsyslog doc says why each piece.
var rsyslogConf = template.Must(template.New("rsyslog.conf").Parse(`# written by wharf e2e/logbench
global(
  workDirectory="{{.WorkDir}}"
  maxMessageSize="{{.MaxMsgSize}}"
  processInternalMessages="on"
)

module(load="imfile" mode="inotify")

template(name="logbenchRaw" type="string" string="%msg%\n")

ruleset(name="ship"
  queue.type="LinkedList"
  queue.size="{{.QueueSize}}"
  queue.dequeueBatchSize="{{.BatchSize}}"
  queue.workerThreads="{{.Workers}}"
  queue.discardSeverity="8"
) {
  action(type="omfwd" target="{{.Host}}" port="{{.Port}}" protocol="tcp"
{{- if .RFC5424}}
    template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted"
{{- else}}
    template="logbenchRaw" TCP_Framing="traditional"
{{- end}}
    action.resumeRetryCount="-1" action.resumeInterval="1")
}
{{range $i, $f := .Files}}
input(type="imfile" file="{{$f}}" tag="logbench{{$i}}" ruleset="ship"
  readMode="0" reopenOnTruncate="off" addMetadata="off" freshStartTail="off"
  persistStateInterval="0" MaxSubmitAtOnce="{{$.SubmitBatch}}")
{{- end}}

# rsyslogd's own messages (start, errors): a file, never the sink.
*.* action(type="omfile" file="{{.Internal}}")
`))

func (c rsyslogConfig) text() string {
	var b strings.Builder
	if err := rsyslogConf.Execute(&b, c); err != nil {
		panic(err) // the template and its data are this package's own
	}
	return b.String()
}
