package agent

import (
	"context"
	"reflect"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wharf-platform/wharf/pkg/wire"
)

// The control stream carries the hub's messages down and the agent's
// reports up. The session knows only its own protocol (Hello, Welcome,
// heartbeats and their timing); each feature registers with a control
// the message kinds it handles and what it sends up, so a new feature
// adds a registration, not a case in the session.

// kind is a control-stream message kind: the type of the Envelope's
// oneof wrapper (*wire.Envelope_Assignments, ...).
type kind = reflect.Type

// kindOf returns the kind of an Envelope's Msg.
func kindOf(msg any) kind { return reflect.TypeOf(msg) }

// inbound is one message the hub sent.
type inbound struct {
	env *wire.Envelope
	// sent is, for a HeartbeatAck, when the heartbeat it acknowledges
	// was sent (monotonic clock); zero when unknown.
	sent time.Time
	// reply sends on the control stream.
	reply func(*wire.Envelope) error
}

// handler handles one message; an error ends the session.
type handler func(ctx context.Context, in inbound) error

// feed is what a feature sends the hub during one session; each part
// may be nil, and a nil message means nothing to send.
type feed struct {
	// first is sent once, after Welcome.
	first func() *wire.Envelope
	// tick is sent after each heartbeat.
	tick func(now time.Time) *wire.Envelope
	// changed signals that onChange has something to send.
	changed  <-chan struct{}
	onChange func() *wire.Envelope
	// conn runs for the session's lifetime, on streams of its own.
	conn func(ctx context.Context, conn *quic.Conn)
}

// control is what the features of an agent registered with its
// sessions.
type control struct {
	handlers map[kind][]handler
	// feeds make a fresh feed for each session: what a feed remembers
	// (the last sample sent, say) starts over with a new hub node.
	feeds []func() feed
}

func newControl() *control { return &control{handlers: map[kind][]handler{}} }

// handle registers h for messages of the kind of msg (a zero oneof
// wrapper, &wire.Envelope_Assignments{}).
func (c *control) handle(msg any, h handler) {
	k := kindOf(msg)
	c.handlers[k] = append(c.handlers[k], h)
}

// send registers what a feature sends up in each session.
func (c *control) send(f func() feed) { c.feeds = append(c.feeds, f) }

// dispatch hands in to the handlers of its kind, in registration order;
// a kind nobody handles is ignored (a newer hub's).
func (c *control) dispatch(ctx context.Context, in inbound) error {
	for _, h := range c.handlers[kindOf(in.env.Msg)] {
		if err := h(ctx, in); err != nil {
			return err
		}
	}
	return nil
}
