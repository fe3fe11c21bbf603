// Package control is the registry of the agent's control stream: the
// stream carries the hub's messages down and the agent's reports up. The
// session knows only its own protocol (Hello, Welcome, heartbeats and
// their timing); each feature registers the message kinds it handles and
// what it sends up, so a new feature adds a registration, not a case in
// the session.
package control

import (
	"context"
	"reflect"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/pkg/wire"
)

// kind is a control-stream message kind: the type of the Envelope's
// oneof wrapper (*wire.Envelope_Assignments, ...).
type kind = reflect.Type

// kindOf returns the kind of an Envelope's Msg.
func kindOf(msg any) kind { return reflect.TypeOf(msg) }

// Inbound is one message the hub sent.
type Inbound struct {
	Env *wire.Envelope
	// Sent is, for a HeartbeatAck, when the heartbeat it acknowledges
	// was sent (monotonic clock); zero when unknown.
	Sent time.Time
	// Reply sends on the control stream.
	Reply func(*wire.Envelope) error
}

// Handler handles one message; an error ends the session.
type Handler func(ctx context.Context, in Inbound) error

// Feed is what a feature sends the hub during one session; each part
// may be nil, and a nil message means nothing to send.
type Feed struct {
	// First is sent once, after Welcome.
	First func() *wire.Envelope
	// Tick is sent after each heartbeat.
	Tick func(now time.Time) *wire.Envelope
	// Changed signals that OnChange has something to send.
	Changed  <-chan struct{}
	OnChange func() *wire.Envelope
	// Conn runs for the session's lifetime, on streams of its own.
	Conn func(ctx context.Context, conn *quic.Conn)
}

// Control is what the features of an agent registered with its
// sessions.
type Control struct {
	handlers map[kind][]Handler
	// feeds make a fresh feed for each session: what a feed remembers
	// (the last sample sent, say) starts over with a new hub node.
	feeds []func() Feed
}

// New returns a Control with nothing registered.
func New() *Control { return &Control{handlers: map[kind][]Handler{}} }

// Handle registers h for messages of the kind of msg (a zero oneof
// wrapper, &wire.Envelope_Assignments{}).
func (c *Control) Handle(msg any, h Handler) {
	k := kindOf(msg)
	c.handlers[k] = append(c.handlers[k], h)
}

// Send registers what a feature sends up in each session.
func (c *Control) Send(f func() Feed) { c.feeds = append(c.feeds, f) }

// Feeds makes the feeds of a new session, in registration order.
func (c *Control) Feeds() []Feed {
	out := make([]Feed, len(c.feeds))
	for i, f := range c.feeds {
		out[i] = f()
	}
	return out
}

// Dispatch hands in to the handlers of its kind, in registration order;
// a kind nobody handles is ignored (a newer hub's).
func (c *Control) Dispatch(ctx context.Context, in Inbound) error {
	for _, h := range c.handlers[kindOf(in.Env.Msg)] {
		if err := h(ctx, in); err != nil {
			return err
		}
	}
	return nil
}
