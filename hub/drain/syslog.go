package drain

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// sdID is the SD-ID of Wharf's structured data: 32473 is the private
// enterprise number reserved for documentation (RFC 5612).
const sdID = "wharf@32473"

// Field limits of RFC 5424 section 6.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
)

// bom marks an RFC 5424 MSG as UTF-8 (MSG-UTF8).
const bom = "\uFEFF"

// syslogSender writes RFC 5424 messages with octet-counting framing
// (RFC 6587) over one persistent TCP or TLS connection.
type syslogSender struct {
	t    Target
	o    Options
	conn net.Conn      // nil until dialled, and after a write error
	dead chan struct{} // closed when conn's reader stops: the peer hung up
	buf  bytes.Buffer  // the framed batch
	msg  []byte        // one message, before framing
}

var _ Sender = (*syslogSender)(nil)

func newSyslog(t Target, o Options) *syslogSender {
	return &syslogSender{t: t, o: o}
}

// Send writes the batch in one write. On an error the connection is closed
// and the next Send dials again.
func (s *syslogSender) Send(ctx context.Context, lines []Line) error {
	if len(lines) == 0 {
		return nil
	}
	s.buf.Reset()
	for _, l := range lines {
		s.msg = appendSyslog(s.msg[:0], l, s.o.Hostname)
		s.buf.WriteString(strconv.Itoa(len(s.msg)))
		s.buf.WriteByte(' ')
		s.buf.Write(s.msg)
	}

	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	if s.conn != nil {
		select {
		case <-s.dead:
			s.drop() // the receiver closed the connection since the last batch
		default:
		}
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	c := s.conn
	// The write ends when ctx does (Timeout included), and then ctx.Err()
	// is set: a deadline in the past interrupts it.
	c.SetWriteDeadline(time.Time{})
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.SetWriteDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	_, err := c.Write(s.buf.Bytes())
	if !stop() {
		<-interrupted // so that it cannot touch the next write's deadline
	}
	if err != nil {
		s.drop()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("write to syslog drain %s: %w", s.t.URL.Host, err)
	}
	return nil
}

func (s *syslogSender) dial(ctx context.Context) error {
	var (
		c   net.Conn
		err error
	)
	if s.t.Kind == KindSyslogTLS {
		d := &tls.Dialer{Config: s.o.TLSConfig}
		c, err = d.DialContext(ctx, "tcp", s.t.URL.Host)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", s.t.URL.Host)
	}
	if err != nil {
		return fmt.Errorf("dial syslog drain %s: %w", s.t.URL.Host, err)
	}
	dead := make(chan struct{})
	go func() {
		// A syslog receiver sends nothing; reading notices when it hangs up
		// (and lets TLS process post-handshake messages).
		io.Copy(io.Discard, c)
		close(dead)
	}()
	s.conn, s.dead = c, dead
	return nil
}

// drop closes the connection and waits for its reader to stop.
func (s *syslogSender) drop() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	<-s.dead
	s.conn, s.dead = nil, nil
	return err
}

// Close closes the connection, if any.
func (s *syslogSender) Close() error {
	return s.drop()
}

// appendSyslog appends l as an RFC 5424 SYSLOG-MSG, without framing.
func appendSyslog(b []byte, l Line, hostname string) []byte {
	pri := "<14>1 " // facility user, severity info
	if l.Stream == "stderr" {
		pri = "<11>1 " // facility user, severity error
	}
	b = append(b, pri...)
	if l.Time.IsZero() {
		b = append(b, '-')
	} else {
		b = l.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	}
	b = append(b, ' ')
	b = appendHeaderField(b, hostname, maxHostname)
	b = append(b, ' ')
	b = appendHeaderField(b, l.Tenant+"."+l.App, maxAppName)
	b = append(b, ' ')
	b = appendHeaderField(b, l.Instance, maxProcID)
	b = append(b, ' ')
	b = appendHeaderField(b, l.Stream, maxMsgID)
	b = append(b, " ["+sdID+" seq=\""...)
	b = appendParamValue(b, strconv.FormatUint(l.Seq, 10))
	b = append(b, "\"]"...)
	if l.Line == "" {
		return b
	}
	b = append(b, ' ')
	msg := strings.ToValidUTF8(l.Line, "\uFFFD")
	if strings.HasPrefix(msg, bom) {
		// Without a BOM, MSG-ANY must not start with one; with a BOM the
		// receiver strips the first and keeps the line's own.
		b = append(b, bom...)
	}
	return append(b, msg...)
}

// appendHeaderField appends s as a header field: printable US-ASCII only
// (every other character becomes '_'), at most max bytes, "-" if empty.
func appendHeaderField(b []byte, s string, max int) []byte {
	if s == "" {
		return append(b, '-')
	}
	n := 0
	for _, r := range s {
		if n == max {
			break
		}
		if r < 33 || r > 126 {
			r = '_'
		}
		b = append(b, byte(r))
		n++
	}
	return b
}

// appendParamValue appends s escaped as an SD PARAM-VALUE.
func appendParamValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}
