package drain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rsyslogConf makes rsyslogd listen on addr only (no system sockets) and
// write each message's fields as one JSON object per line to out.
const rsyslogConf = `
global(workDirectory="%[1]s" maxMessageSize="64k" parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
template(name="wharf" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
ruleset(name="wharf") {
  action(type="omfile" file="%[2]s" template="wharf")
}
input(type="imtcp" address="127.0.0.1" port="%[3]d" ruleset="wharf")
`

type rsyslogRecord struct {
	Pri, Time, Host, App, ProcID, MsgID, SD, Msg string
}

// startRsyslog runs a private rsyslogd and returns its address and the
// file it writes to. It skips the test if rsyslogd is not installed, unless
// WHARF_REQUIRE_RSYSLOG=1.
func startRsyslog(t *testing.T) (addr, out string) {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr == nil {
			bin, err = "/usr/sbin/rsyslogd", nil
		}
	}
	if err != nil {
		if os.Getenv("WHARF_REQUIRE_RSYSLOG") == "1" {
			t.Fatalf("rsyslogd required but not found: %v", err)
		}
		t.Skip("rsyslogd not installed (apt-get install rsyslog)")
	}
	dir := t.TempDir()
	out = filepath.Join(dir, "out.json")
	port := freePort(t)
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(rsyslogConf, dir, out, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", stderr.String())
		}
	})
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, 10*time.Second, "rsyslogd to listen on "+addr, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("rsyslogd exited: %v\n%s", err, stderr.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return addr, out
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readRsyslog(t testing.TB, path string) []rsyslogRecord {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []rsyslogRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !bytes.HasSuffix(sc.Bytes(), []byte("}")) {
			break // a line rsyslogd is still writing
		}
		var r rsyslogRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("rsyslog output %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestRsyslog sends a batch to a real rsyslogd and checks the fields it
// parsed.
func TestRsyslog(t *testing.T) {
	addr, out := startRsyslog(t)
	target, err := Parse("syslog://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(target, Options{Hostname: "hub-7"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lines := testLines()
	if err := s.Send(context.Background(), lines); err != nil {
		t.Fatal(err)
	}
	var recs []rsyslogRecord
	waitFor(t, 20*time.Second, fmt.Sprintf("%d lines in %s", len(lines), out), func() bool {
		recs = readRsyslog(t, out)
		return len(recs) >= len(lines)
	})
	if len(recs) != len(lines) {
		t.Fatalf("rsyslogd wrote %d records, want %d", len(recs), len(lines))
	}
	for i, l := range lines {
		r := recs[i]
		pri := "14"
		if l.Stream == "stderr" {
			pri = "11"
		}
		want := rsyslogRecord{
			Pri:    pri,
			Time:   l.Time.UTC().Format("2006-01-02T15:04:05.000000Z"),
			Host:   "hub-7",
			App:    l.Tenant + "." + l.App,
			ProcID: l.Instance,
			MsgID:  l.Stream,
			SD:     fmt.Sprintf(`[wharf@32473 seq="%d"]`, l.Seq),
			Msg:    l.Line,
		}
		// rsyslogd keeps a BOM in msg; RFC 5424 says it only marks UTF-8.
		r.Msg = strings.TrimPrefix(r.Msg, bom)
		if r != want {
			t.Errorf("line %d:\n got %.200q\nwant %.200q", i, r, want)
		}
	}
}
