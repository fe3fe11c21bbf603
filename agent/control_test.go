package agent

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/wharf-platform/wharf/pkg/wire"
)

// TestControlDispatch: a message goes to the handlers of its kind, in
// the order they registered; a kind nobody handles is ignored; a
// handler's error stops the dispatch and is returned.
func TestControlDispatch(t *testing.T) {
	var got []string
	c := newControl()
	c.handle(&wire.Envelope_HeartbeatAck{}, func(context.Context, inbound) error { got = append(got, "ack 1"); return nil })
	c.handle(&wire.Envelope_RouteTable{}, func(context.Context, inbound) error { got = append(got, "routes"); return nil })
	c.handle(&wire.Envelope_HeartbeatAck{}, func(context.Context, inbound) error { got = append(got, "ack 2"); return nil })
	boom := errors.New("boom")
	c.handle(&wire.Envelope_Error{}, func(context.Context, inbound) error { return boom })
	c.handle(&wire.Envelope_Error{}, func(context.Context, inbound) error { got = append(got, "after the error"); return nil })
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
			err := c.dispatch(ctx, inbound{env: tc.msg})
			if !errors.Is(err, tc.wantErr) || !slices.Equal(got, tc.want) {
				t.Fatalf("dispatch: %v, handled %v; want %v, %v", err, got, tc.wantErr, tc.want)
			}
		})
	}
}
