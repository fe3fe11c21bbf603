package console

import (
	"testing"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestSessionsExpireWhenIdle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss := newSessions(time.Hour, func() time.Time { return now })
	s := ss.create("secret", apitypes.Token{Name: "a", Role: apitypes.RoleAdmin})
	if s.ID == s.CSRF || len(s.ID) < 40 {
		t.Fatalf("session id %q / csrf %q are not two random tokens", s.ID, s.CSRF)
	}
	now = now.Add(59 * time.Minute)
	if ss.get(s.ID) == nil {
		t.Fatal("a session used within the idle time ended")
	}
	now = now.Add(59 * time.Minute) // 118 min after creation, 59 after last use
	if ss.get(s.ID) == nil {
		t.Fatal("using a session did not extend it")
	}
	now = now.Add(61 * time.Minute)
	if ss.get(s.ID) != nil {
		t.Fatal("an idle session did not expire")
	}
	// Expired sessions are swept when new ones are made.
	ss.create("x", apitypes.Token{})
	now = now.Add(2 * time.Hour)
	ss.create("y", apitypes.Token{})
	if n := ss.len(); n != 1 {
		t.Fatalf("%d sessions kept, want 1 (the others expired)", n)
	}
}
