package control

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestDispatch: a message goes to the handlers of its kind, in the order
// they registered; a kind nobody handles is ignored; a handler's error
// stops the dispatch and is returned.
func TestDispatch(t *testing.T) {
	var got []string
	c := New()
	c.Handle(&wire.Envelope_HeartbeatAck{}, func(context.Context, Inbound) error { got = append(got, "ack 1"); return nil })
	c.Handle(&wire.Envelope_RouteTable{}, func(context.Context, Inbound) error { got = append(got, "routes"); return nil })
	c.Handle(&wire.Envelope_HeartbeatAck{}, func(context.Context, Inbound) error { got = append(got, "ack 2"); return nil })
	boom := errors.New("boom")
	c.Handle(&wire.Envelope_Error{}, func(context.Context, Inbound) error { return boom })
	c.Handle(&wire.Envelope_Error{}, func(context.Context, Inbound) error { got = append(got, "after the error"); return nil })
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		msg     *wire.Envelope
		want    []string
		wantErr error
	}{
		{"two handlers in order", &wire.Envelope{Msg: &wire.Envelope_HeartbeatAck{HeartbeatAck: &wire.HeartbeatAck{Seq: 1}}}, []string{"ack 1", "ack 2"}, nil},
		{"one handler", &wire.Envelope{Msg: &wire.Envelope_RouteTable{RouteTable: &wire.RouteTable{}}}, []string{"routes"}, nil},
		{"nobody handles it", &wire.Envelope{Msg: &wire.Envelope_Assignments{Assignments: &wire.Assignments{}}}, nil, nil},
		{"an error stops", &wire.Envelope{Msg: &wire.Envelope_Error{Error: &wire.Error{}}}, nil, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			err := c.Dispatch(ctx, Inbound{Env: tc.msg})
			if !errors.Is(err, tc.wantErr) || !slices.Equal(got, tc.want) {
				t.Fatalf("dispatch: %v, handled %v; want %v, %v", err, got, tc.wantErr, tc.want)
			}
		})
	}
}

// TestFeedsFreshPerSession: each session gets feeds made anew, in
// registration order, so what one remembers starts over.
func TestFeedsFreshPerSession(t *testing.T) {
	c := New()
	made := 0
	for _, name := range []string{"first", "second"} {
		c.Send(func() Feed {
			made++
			n := 0
			return Feed{First: func() *wire.Envelope {
				n++
				return &wire.Envelope{Msg: &wire.Envelope_Error{Error: &wire.Error{Message: name, Code: uint32(n)}}}
			}}
		})
	}
	for session := range 2 {
		feeds := c.Feeds()
		if len(feeds) != 2 {
			t.Fatalf("session %d: %d feeds, want 2", session, len(feeds))
		}
		for i, want := range []string{"first", "second"} {
			e := feeds[i].First().GetError()
			if e.Message != want || e.Code != 1 {
				t.Fatalf("session %d feed %d: %q #%d, want %q #1", session, i, e.Message, e.Code, want)
			}
		}
	}
	if made != 4 {
		t.Fatalf("feeds made %d times, want 4", made)
	}
}
