package drain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// syslogServer is a TCP or TLS syslog receiver that decodes RFC 6587
// octet-counted RFC 5424 messages with go-syslog's parsers.
type syslogServer struct {
	ln   net.Listener
	addr string
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	msgs  []received
	errs  []error
}

type received struct {
	conn int // index of the connection it came on
	msg  *rfc5424.SyslogMessage
}

func startSyslogServer(t testing.TB, cfg *tls.Config) *syslogServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &syslogServer{addr: ln.Addr().String(), ln: ln}
	if cfg != nil {
		s.ln = tls.NewListener(ln, cfg)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		s.ln.Close()
		s.closeConns()
		s.wg.Wait()
	})
	return s
}

func (s *syslogServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		id := len(s.conns)
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p := octetcounting.NewParser(
				syslog.WithMaxMessageLength(1<<20),
				syslog.WithMachineOptions(rfc5424.WithCompliantMsg()),
				syslog.WithListener(func(r *syslog.Result) {
					s.mu.Lock()
					defer s.mu.Unlock()
					if r.Error != nil {
						s.errs = append(s.errs, fmt.Errorf("conn %d: %w", id, r.Error))
						return
					}
					s.msgs = append(s.msgs, received{id, r.Message.(*rfc5424.SyslogMessage)})
				}))
			p.Parse(c)
		}()
	}
}

func (s *syslogServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *syslogServer) received() ([]received, int, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...), len(s.conns), append([]error(nil), s.errs...)
}

func (s *syslogServer) waitMessages(t testing.TB, n int) []received {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d syslog messages", n), func() bool {
		msgs, _, errs := s.received()
		return len(msgs) >= n || len(errs) > 0
	})
	msgs, _, errs := s.received()
	if len(errs) > 0 {
		t.Fatalf("syslog parser: %v", errs)
	}
	return msgs
}

// rfc5424Text is MSG as a receiver reads it: a leading BOM only says
// that the rest is UTF-8.
func rfc5424Text(m *rfc5424.SyslogMessage) string {
	if m.Message == nil {
		return ""
	}
	return strings.TrimPrefix(*m.Message, bom)
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// checkSyslog compares a decoded message with the line it came from.
func checkSyslog(t testing.TB, m *rfc5424.SyslogMessage, l Line, hostname string) {
	t.Helper()
	wantSev := uint8(6)
	if l.Stream == "stderr" {
		wantSev = 3
	}
	if m.Priority == nil || *m.Facility != 1 || *m.Severity != wantSev {
		t.Errorf("seq %d: priority %v, want facility 1 severity %d", l.Seq, m.Priority, wantSev)
	}
	if m.Version != 1 {
		t.Errorf("seq %d: version %d", l.Seq, m.Version)
	}
	if want := l.Time.Truncate(time.Microsecond); m.Timestamp == nil || !m.Timestamp.Equal(want) {
		t.Errorf("seq %d: timestamp %v, want %v", l.Seq, m.Timestamp, want)
	}
	if str(m.Hostname) != hostname {
		t.Errorf("seq %d: hostname %q, want %q", l.Seq, str(m.Hostname), hostname)
	}
	if want := l.Tenant + "." + l.App; str(m.Appname) != want {
		t.Errorf("seq %d: app-name %q, want %q", l.Seq, str(m.Appname), want)
	}
	if str(m.ProcID) != l.Instance {
		t.Errorf("seq %d: procid %q, want %q", l.Seq, str(m.ProcID), l.Instance)
	}
	if str(m.MsgID) != l.Stream {
		t.Errorf("seq %d: msgid %q, want %q", l.Seq, str(m.MsgID), l.Stream)
	}
	if m.StructuredData == nil || (*m.StructuredData)[sdID]["seq"] != strconv.FormatUint(l.Seq, 10) {
		t.Errorf("seq %d: structured data %v", l.Seq, m.StructuredData)
	}
	if got := rfc5424Text(m); got != l.Line {
		t.Errorf("seq %d: message %.80q, want %.80q", l.Seq, got, l.Line)
	}
}

func TestSyslogDelivers(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, tc := range []struct {
		name   string
		scheme string
		server *tls.Config
	}{
		{"tcp", "syslog", nil},
		{"tls", "syslog+tls", serverTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSyslogServer(t, tc.server)
			target, err := Parse(tc.scheme + "://" + srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(target, Options{TLSConfig: clientTLS, Hostname: "hub-7"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			lines := testLines()
			ctx := context.Background()
			if err := s.Send(ctx, lines[:3]); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(ctx, lines[3:]); err != nil {
				t.Fatal(err)
			}
			msgs := srv.waitMessages(t, len(lines))
			if len(msgs) != len(lines) {
				t.Fatalf("got %d messages, want %d", len(msgs), len(lines))
			}
			for i, r := range msgs {
				checkSyslog(t, r.msg, lines[i], "hub-7")
				if r.conn != 0 {
					t.Errorf("message %d came on connection %d, want one persistent connection", i, r.conn)
				}
			}
		})
	}
}

func TestSyslogTLSRefusesUnknownCA(t *testing.T) {
	serverTLS, _ := testTLS(t)
	_, otherCA := testTLS(t)
	srv := startSyslogServer(t, serverTLS)
	target, err := Parse("syslog+tls://" + srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(target, Options{TLSConfig: otherCA})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Send(context.Background(), testLines()[:1])
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("Send with an untrusted server certificate: %v, want an unknown authority error", err)
	}
}

func TestSyslogReconnects(t *testing.T) {
	srv := startSyslogServer(t, nil)
	target, err := Parse("syslog+tcp://" + srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(target, Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	line := testLines()[0]
	send := func(seq uint64) error {
		l := line
		l.Seq = seq
		return s.Send(ctx, []Line{l})
	}
	if err := send(1); err != nil {
		t.Fatal(err)
	}
	srv.waitMessages(t, 1)

	// The receiver hangs up. Once the sender has noticed, the next batch
	// goes over a new connection instead of into the dead one.
	srv.closeConns()
	dead := s.(*syslogSender).dead
	waitFor(t, 10*time.Second, "the sender to notice the hang-up", func() bool {
		select {
		case <-dead:
			return true
		default:
			return false
		}
	})
	seq := uint64(1)
	if err := send(1000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "message 1000", func() bool {
		msgs, _, _ := srv.received()
		last := msgs[len(msgs)-1]
		return (*last.msg.StructuredData)[sdID]["seq"] == "1000"
	})
	msgs, conns, _ := srv.received()
	if conns != 2 {
		t.Errorf("receiver saw %d connections, want 2", conns)
	}
	if last := msgs[len(msgs)-1]; last.conn != 1 {
		t.Errorf("message 1000 on connection %d, want 1", last.conn)
	}

	// With the receiver gone for good, Send fails.
	srv.ln.Close()
	srv.closeConns()
	waitFor(t, 10*time.Second, "Send to fail", func() bool {
		seq++
		return send(seq) != nil
	})
	// And keeps failing rather than writing into a dead connection.
	if err := send(seq + 1); err == nil || !strings.Contains(err.Error(), "dial syslog drain") {
		t.Errorf("Send after the receiver left: %v, want a dial error", err)
	}
}

func TestSyslogHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Accept but never read: the sender's writes fill the socket buffers.
	done := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			done <- c
		}
	}()
	t.Cleanup(func() {
		select {
		case c := <-done:
			c.Close()
		default:
		}
	})
	target, err := Parse("syslog://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(target, Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := make([]Line, 2000)
	for i := range big {
		big[i] = testLines()[5] // 20 kB each: 40 MB in all
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, big)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a stuck receiver: %v, want context.DeadlineExceeded", err)
	}
	// Well before the one-minute write timeout: the context ended it (a
	// loaded machine may take seconds to format 40 MB).
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Send returned after %v", d)
	}
}

var timestampRE = regexp.MustCompile(`^<1[14]>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z `)

// TestSyslogFields checks what the sender does to fields that do not fit
// RFC 5424's header, decoding the result with go-syslog's RFC 5424 parser.
func TestSyslogFields(t *testing.T) {
	base := testLines()[0]
	for _, tc := range []struct {
		name   string
		edit   func(*Line)
		host   string
		check  func(*rfc5424.SyslogMessage) error
		rawHas string
	}{
		{
			name: "app-name is sanitized and cut to 48",
			edit: func(l *Line) { l.Tenant, l.App = "ténant one", strings.Repeat("a", 60) },
			check: func(m *rfc5424.SyslogMessage) error {
				want := ("t_nant_one." + strings.Repeat("a", 60))[:48]
				if str(m.Appname) != want {
					return fmt.Errorf("app-name %q, want %q", str(m.Appname), want)
				}
				return nil
			},
		},
		{
			name: "procid is cut to 128",
			edit: func(l *Line) { l.Instance = strings.Repeat("i", 200) },
			check: func(m *rfc5424.SyslogMessage) error {
				if str(m.ProcID) != strings.Repeat("i", 128) {
					return fmt.Errorf("procid %q", str(m.ProcID))
				}
				return nil
			},
		},
		{
			name: "empty fields are NILVALUE",
			edit: func(l *Line) { l.Instance, l.Stream = "", "" },
			host: "h",
			check: func(m *rfc5424.SyslogMessage) error {
				if m.ProcID != nil || m.MsgID != nil {
					return fmt.Errorf("procid %q msgid %q, want none", str(m.ProcID), str(m.MsgID))
				}
				return nil
			},
			rawHas: " acme.web - - [",
		},
		{
			name: "hostname with spaces",
			host: "my hub",
			check: func(m *rfc5424.SyslogMessage) error {
				if str(m.Hostname) != "my_hub" {
					return fmt.Errorf("hostname %q", str(m.Hostname))
				}
				return nil
			},
		},
		{
			name: "invalid UTF-8 becomes U+FFFD",
			edit: func(l *Line) { l.Line = "bad \xff byte" },
			check: func(m *rfc5424.SyslogMessage) error {
				if rfc5424Text(m) != "bad \uFFFD byte" {
					return fmt.Errorf("message %q", rfc5424Text(m))
				}
				return nil
			},
		},
		{
			name: "leading U+FEFF survives",
			edit: func(l *Line) { l.Line = bom + "x" },
			check: func(m *rfc5424.SyslogMessage) error {
				if rfc5424Text(m) != bom+"x" {
					return fmt.Errorf("message %q", rfc5424Text(m))
				}
				return nil
			},
			rawHas: "] " + bom + bom + "x",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := base
			if tc.edit != nil {
				tc.edit(&l)
			}
			host := tc.host
			if host == "" {
				host = "wharf"
			}
			raw := appendSyslog(nil, l, host)
			if !timestampRE.Match(raw) {
				t.Errorf("header %.60q does not match %v", raw, timestampRE)
			}
			if tc.rawHas != "" && !strings.Contains(string(raw), tc.rawHas) {
				t.Errorf("message %q does not contain %q", raw, tc.rawHas)
			}
			msg, err := rfc5424.NewParser(rfc5424.WithCompliantMsg()).Parse(raw)
			if err != nil {
				t.Fatalf("parse %q: %v", raw, err)
			}
			if err := tc.check(msg.(*rfc5424.SyslogMessage)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAppendParamValue(t *testing.T) {
	got := string(appendParamValue(nil, `a"b\c]d`))
	if want := `a\"b\\c\]d`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// A real parser reads the escaped value back.
	raw := `<14>1 - - - - - [x@32473 v="` + got + `"]`
	msg, err := rfc5424.NewParser().Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := (*msg.(*rfc5424.SyslogMessage).StructuredData)["x@32473"]["v"]; v != `a"b\c]d` {
		t.Errorf("parser read %q", v)
	}
}
