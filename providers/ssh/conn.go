package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-platform/wharf/providers"
)

// hostKeyFamilies are tried in turn until the host presents a key that
// matches its pin: a host has one key per type and the pin names one of
// them, which a single handshake might not be offered.
var hostKeyFamilies = [][]string{
	{ssh.KeyAlgoED25519},
	{ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521},
	{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256},
}

// hostKeyError is a host key that is not the pinned one.
type hostKeyError struct{ got, want string }

func (e *hostKeyError) Error() string {
	return fmt.Sprintf("host key %s does not match the pinned %s", e.got, e.want)
}

// dial connects and authenticates to host after checking its key against
// the pin; nothing is sent to a host whose key does not match (the check
// happens in the key exchange, before authentication).
func (p *Provider) dial(ctx context.Context, host string) (*ssh.Client, error) {
	want, ok := p.pins[host]
	if !ok {
		return nil, &providers.Error{Kind: providers.KindHostKey, Code: "host_key_not_pinned",
			Message: fmt.Sprintf("host %s has no pinned host key (add it to host_key_fingerprints); refused", host)}
	}
	p.mu.Lock()
	known := p.algos[host]
	p.mu.Unlock()
	families := hostKeyFamilies
	if known != nil {
		families = [][]string{known}
	}
	var mismatch []string
	for _, algos := range families {
		c, err := p.handshake(ctx, host, want, algos)
		var hk *hostKeyError
		switch {
		case err == nil:
			p.mu.Lock()
			p.algos[host] = algos
			p.mu.Unlock()
			return c, nil
		case errors.As(err, &hk):
			mismatch = append(mismatch, hk.got)
		case noHostKeyOfType(err):
			// The host has no key of this type: try the next.
		default:
			return nil, err
		}
		if known != nil {
			// The key that matched before no longer does: look again.
			p.mu.Lock()
			delete(p.algos, host)
			p.mu.Unlock()
			return p.dial(ctx, host)
		}
	}
	return nil, &providers.Error{Kind: providers.KindHostKey, Code: "host_key_mismatch",
		Message: fmt.Sprintf("host %s presents %s, none of which is the pinned %s; refused", host, strings.Join(mismatch, ", "), want)}
}

// handshake is one connection attempt offering only algos as host key
// algorithms. Errors are *providers.Error except a *hostKeyError and the
// algorithm negotiation failure, which dial handles.
func (p *Provider) handshake(ctx context.Context, host, want string, algos []string) (*ssh.Client, error) {
	d := net.Dialer{Timeout: p.opts.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindUnavailable, Code: "unreachable", Message: fmt.Sprintf("host %s: %v", host, err), Err: err}
	}
	deadline := time.Now().Add(p.opts.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	cfg := &ssh.ClientConfig{
		User: p.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(p.signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != want {
				return &hostKeyError{got: got, want: want}
			}
			return nil
		},
		HostKeyAlgorithms: algos,
		Timeout:           p.opts.DialTimeout,
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, host, cfg)
	if err != nil {
		conn.Close()
		var hk *hostKeyError
		switch {
		case errors.As(err, &hk), noHostKeyOfType(err):
			return nil, err
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, &providers.Error{Kind: providers.KindBadCredentials, Code: "auth_failed",
				Message: fmt.Sprintf("host %s refused user %s with this private_key", host, p.user), Err: err}
		}
		return nil, &providers.Error{Kind: providers.KindUnavailable, Code: "ssh_failed", Message: fmt.Sprintf("host %s: %v", host, err), Err: err}
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// noHostKeyOfType reports whether err is the host having no key of the
// types offered.
func noHostKeyOfType(err error) bool {
	var ne *ssh.AlgorithmNegotiationError
	return errors.As(err, &ne) && ne.What == "host key"
}

// exitError is a remote command's non-zero exit.
type exitError struct {
	status int
	stderr string // its last lines
}

func (e *exitError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("exit status %d", e.status)
	}
	return fmt.Sprintf("exit status %d: %s", e.status, e.stderr)
}

// isExit reports whether err is a remote exit with status.
func isExit(err error, status int) bool {
	var e *exitError
	return errors.As(err, &e) && e.status == status
}

// runShort is run bounded by CommandTimeout.
func (p *Provider) runShort(ctx context.Context, c *ssh.Client, script string) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.CommandTimeout)
	defer cancel()
	return p.run(ctx, c, script)
}

// run runs script with sh on the host (through sudo -n when the user is
// not root) and returns its stdout. A non-zero exit is a *providers.Error
// (KindUnavailable, code "exit N") whose message is the last lines of the
// command's stderr, wrapping an *exitError; the end of ctx closes the
// connection and is KindUnavailable too.
func (p *Provider) run(ctx context.Context, c *ssh.Client, script string) error {
	_, err := p.output(ctx, c, script)
	return err
}

func (p *Provider) output(ctx context.Context, c *ssh.Client, script string) (string, error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", &providers.Error{Kind: providers.KindUnavailable, Code: "ssh_failed", Message: "open session: " + err.Error(), Err: err}
	}
	defer sess.Close()
	var stdout strings.Builder
	stderr := &tailBuffer{max: 16 << 10}
	sess.Stdout = &limitedWriter{w: &stdout, n: 1 << 20}
	sess.Stderr = stderr
	cmd := "sh -c " + shellQuote(script)
	if p.user != "root" {
		cmd = "sudo -n " + cmd
	}
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		c.Close() // ends the session; Run returns
		<-done
		return "", &providers.Error{Kind: providers.KindUnavailable, Code: "timeout", Message: "the command did not finish in time: " + ctx.Err().Error(), Err: ctx.Err()}
	}
	var ee *ssh.ExitError
	switch {
	case errors.As(err, &ee):
		x := &exitError{status: ee.ExitStatus(), stderr: lastLines(stderr.String(), 10)}
		return stdout.String(), &providers.Error{Kind: providers.KindUnavailable, Code: fmt.Sprintf("exit %d", x.status), Message: x.stderr, Err: x}
	case err != nil:
		return "", &providers.Error{Kind: providers.KindUnavailable, Code: "ssh_failed", Message: err.Error(), Err: err}
	}
	return stdout.String(), nil
}

// lastLines is the last n non-empty lines of s, joined by " | " so that
// they fit on one line of an error.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// limitedWriter keeps the first n bytes and drops the rest, so a chatty
// host cannot fill the hub's memory.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// shellQuote quotes s as one POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
