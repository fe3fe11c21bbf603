package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// session is one signed-in browser. The API token stays here, on the
// server; the browser holds only the session id.
type session struct {
	ID       string
	token    string
	CSRF     string
	Name     string
	Role     apitypes.Role
	Tenant   string
	lastUsed time.Time
}

// CanWrite reports whether the session's role may change apps. The API
// decides every request anyway; this only hides forms it would refuse.
func (s *session) CanWrite() bool { return s.Role != apitypes.RoleViewer }

func (s *session) Admin() bool { return s.Role == apitypes.RoleAdmin }

// sessions holds this node's sessions in memory, expiring them after an
// idle period.
type sessions struct {
	idle time.Duration
	now  func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(idle time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, now: now, byID: map[string]*session{}}
}

// create stores a new session for a token and returns it.
func (ss *sessions) create(token string, self apitypes.Token) *session {
	s := &session{ID: randomID(), CSRF: randomID(), token: token, Name: self.Name, Role: self.Role, Tenant: self.Tenant, lastUsed: ss.now()}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweepLocked()
	ss.byID[s.ID] = s
	return s
}

// get returns the live session with this id and marks it used, or nil.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s == nil {
		return nil
	}
	now := ss.now()
	if now.Sub(s.lastUsed) > ss.idle {
		delete(ss.byID, id)
		return nil
	}
	s.lastUsed = now
	cp := *s
	return &cp
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

func (ss *sessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}

// sweepLocked drops expired sessions, so that abandoned ones do not pile
// up in memory.
func (ss *sessions) sweepLocked() {
	now := ss.now()
	for id, s := range ss.byID {
		if now.Sub(s.lastUsed) > ss.idle {
			delete(ss.byID, id)
		}
	}
}

// randomID returns 32 random bytes, base64url: a session id or CSRF token.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
