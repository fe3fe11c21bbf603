// Package drain owns the delivery of app logs from the hub to external log
// drains: it validates drain URLs (Parse), formats batches of log lines for
// each kind of drain (RFC 5424 syslog over TCP or TLS, Loki's push API,
// Elasticsearch's bulk API), sends them (New, Sender) and retries failed
// batches with backoff (Deliver).
//
// Delivery is at least once: a batch that failed may be sent again whole.
// Elasticsearch documents carry deterministic ids, so a replay creates no
// duplicates there; Loki and syslog receivers may see a line twice.
package drain

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// Line is one log line of an app instance.
type Line struct {
	Time     time.Time
	Tenant   string
	App      string
	Instance string
	Stream   string // "stdout", "stderr", "router"
	Seq      uint64 // per instance, increasing
	Line     string
}

// Options tunes the senders that New returns.
type Options struct {
	// TLSConfig is used for syslog+tls and https targets; tests pass their
	// CA here. Nil means the system defaults. It is cloned, never modified.
	TLSConfig *tls.Config
	// Timeout bounds one attempt (dial and write, or one HTTP request).
	// Zero means 10s.
	Timeout time.Duration
	// Hostname is the HOSTNAME field of syslog messages. Empty means "wharf".
	Hostname string
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Hostname == "" {
		o.Hostname = "wharf"
	}
	return o
}

// Sender delivers batches to one target. Send is called by one goroutine at
// a time.
type Sender interface {
	// Send delivers all lines or returns an error; the same batch may be sent
	// again after an error. Errors that no retry can fix match ErrPermanent.
	Send(ctx context.Context, lines []Line) error
	// Close releases the connections of the sender.
	Close() error
}

// ErrPermanent is matched (errors.Is) by errors that retrying the same batch
// cannot fix, such as a 400 from Loki or a mapping error from Elasticsearch.
var ErrPermanent = errors.New("permanent drain error")

// permanentError marks err as permanent while keeping its message.
type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

func permanent(format string, args ...any) error {
	return &permanentError{fmt.Errorf(format, args...)}
}

// New returns a Sender for t. It does not connect: syslog senders dial on
// the first Send, HTTP senders on each request.
func New(t Target, o Options) (Sender, error) {
	if t.URL == nil {
		return nil, errors.New("drain: zero Target (use Parse)")
	}
	o = o.withDefaults()
	switch t.Kind {
	case KindSyslogTCP, KindSyslogTLS:
		return newSyslog(t, o), nil
	case KindLoki:
		return newLoki(t, o), nil
	case KindES:
		return newES(t, o), nil
	}
	return nil, fmt.Errorf("drain: unknown kind %q", t.Kind)
}
