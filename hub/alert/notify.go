package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers.
const (
	HeaderEvent     = "X-Wharf-Event"     // "alert.firing" or "alert.resolved"
	HeaderDelivery  = "X-Wharf-Delivery"  // the notification's id
	HeaderTimestamp = "X-Wharf-Timestamp" // unix seconds of this attempt
	HeaderSignature = "X-Wharf-Signature" // "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body)
)

// Notification is the JSON body of a webhook.
type Notification struct {
	// ID identifies the notification: the same on every attempt, and the
	// same for the same Transition, so receivers can drop duplicates.
	ID        string   `json:"id"`
	RuleID    string   `json:"rule_id"`
	Tenant    string   `json:"tenant,omitempty"`
	App       string   `json:"app,omitempty"`
	Pool      string   `json:"pool,omitempty"`
	Metric    Metric   `json:"metric"`
	Condition string   `json:"condition"` // "above 80%"
	For       Duration `json:"for"`       // "1m0s"
	State     string   `json:"state"`     // "firing" or "resolved"
	// Value is the sample that caused the change, in the rule's unit
	// (percent, bytes, requests per second or a count).
	Value float64   `json:"value"`
	Since time.Time `json:"since"` // when the condition began to hold (RFC 3339, UTC)
	At    time.Time `json:"at"`    // when the rule fired or resolved (RFC 3339, UTC)
}

// NewNotification returns the webhook body for a transition.
func NewNotification(t Transition) Notification {
	return Notification{
		ID:     deliveryID(t),
		RuleID: t.Rule.ID, Tenant: t.Rule.Tenant, App: t.Rule.App, Pool: t.Rule.Pool,
		Metric: t.Rule.Metric, Condition: t.Rule.Condition(), For: t.Rule.For,
		State: t.State, Value: t.Value, Since: t.Since.UTC(), At: t.At.UTC(),
	}
}

// deliveryID derives the notification id from what makes a transition
// unique, so a retried or re-sent notification keeps it.
func deliveryID(t Transition) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d", t.Rule.ID, t.State, t.Since.UnixNano(), t.At.UnixNano())
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Notifier posts notifications to webhooks. The zero value is ready to
// use.
type Notifier struct {
	// Client sends the requests. Nil: a client with a 10 s timeout that
	// does not follow redirects (a redirect then fails permanently).
	Client *http.Client
	// Base is the wait after the first failed attempt, doubling after each
	// next one up to Max. Zero: 1 s and 1 min.
	Base, Max time.Duration
	// Attempts bounds the tries. Zero: 5.
	Attempts int
	// Now stamps each attempt. Nil: time.Now.
	Now func() time.Time
}

var defaultClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Notify posts the transition's Notification to webhook, signed with secret
// when there is one. It retries network errors, 5xx and 429 answers with
// exponential backoff (honouring a Retry-After in seconds, up to Max);
// it stops at a 2xx, at any other answer, after Attempts tries or when
// ctx ends, and returns the last error. Each attempt carries a fresh
// timestamp and signature over the same body and delivery id. Errors
// leave the URL out: webhook URLs often carry a token.
func (n *Notifier) Notify(ctx context.Context, webhook, secret string, t Transition) error {
	note := NewNotification(t)
	body, err := json.Marshal(note)
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	attempts, wait, maxWait := n.Attempts, n.Base, n.Max
	if attempts <= 0 {
		attempts = 5
	}
	if wait <= 0 {
		wait = time.Second
	}
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	for i := 1; ; i++ {
		retryAfter, err := n.post(ctx, webhook, secret, note, body)
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) || i >= attempts || ctx.Err() != nil {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			}
			return fmt.Errorf("webhook: attempt %d: %w", i, err)
		}
		d := min(max(wait, retryAfter), maxWait)
		wait = min(2*wait, maxWait)
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("webhook: attempt %d: %w (last: %v)", i, ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// permanentError is an answer that retrying will not change.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// post makes one attempt; it returns the wait a 429 or 503 asked for.
func (n *Notifier) post(ctx context.Context, target, secret string, note Notification, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{stripURL(err)}
	}
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wharf-hub")
	req.Header.Set(HeaderEvent, "alert."+note.State)
	req.Header.Set(HeaderDelivery, note.ID)
	req.Header.Set(HeaderTimestamp, ts)
	if secret != "" {
		req.Header.Set(HeaderSignature, "sha256="+sign(secret, ts, body))
	}
	client := n.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, stripURL(err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return 0, nil
	}
	err = fmt.Errorf("%s", resp.Status)
	if s := strings.TrimSpace(string(snippet)); s != "" {
		err = fmt.Errorf("%s: %q", resp.Status, s)
	}
	if code != http.StatusTooManyRequests && code < 500 {
		return 0, permanentError{err}
	}
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return time.Duration(max(secs, 0)) * time.Second, err
}

// stripURL drops the URL from a url.Error, keeping its cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verification errors.
var (
	ErrSignature = errors.New("webhook signature invalid")
	ErrTimestamp = errors.New("webhook timestamp invalid")
)

// Verify is what a receiver does with a webhook: it checks the signature
// header against secret and the body exactly as received, and that the
// timestamp header is within tolerance of now (0: 5 minutes), which
// bounds replays. Its errors wrap ErrSignature or ErrTimestamp.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if secret == "" {
		return fmt.Errorf("%w: no secret to verify with", ErrSignature)
	}
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	ts := header.Get(HeaderTimestamp)
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrTimestamp, HeaderTimestamp, ts)
	}
	hexSig, ok := strings.CutPrefix(header.Get(HeaderSignature), "sha256=")
	if !ok {
		return fmt.Errorf("%w: %s missing or not sha256=<hex>", ErrSignature, HeaderSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrSignature, HeaderSignature)
	}
	want, _ := hex.DecodeString(sign(secret, ts, body))
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w: mismatch", ErrSignature)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s from now, beyond %s", ErrTimestamp, HeaderTimestamp, d.Round(time.Second), tolerance)
	}
	return nil
}
