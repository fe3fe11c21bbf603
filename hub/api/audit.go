package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/audit"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Auditor commits audit entries.
type Auditor interface {
	// Record commits e; it returns once the entry is committed (or
	// dropped by its own rate limit).
	Record(ctx context.Context, e apitypes.AuditEntry) error
	// Fold returns command (made for entry format format) with e in it,
	// committed together, or false when e must be recorded on its own
	// (the cluster cannot read such an entry yet).
	Fold(format int, command []byte, e apitypes.AuditEntry) ([]byte, bool)
	// Folded counts an entry that committed with its write.
	Folded()
}

// audited reports whether a request is audited: a mutating one, or one
// that upgrades its connection (an exec into an instance).
func audited(r *http.Request) bool {
	return mutating(r.Method) || r.Header.Get("Upgrade") != ""
}

// mutating reports whether requests of this method change state.
func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// auditWriter holds a mutating request's answer until its audit entry is
// committed: an answer the client sees always has its entry in Raft. A
// handler that flushes (a streaming answer) has the entry committed at its
// first flush, with the status written so far, and streams from then on.
type auditWriter struct {
	w    http.ResponseWriter
	code int
	body bytes.Buffer
	// finish commits the entry and sends what is held; done says it ran
	// (writes pass through), failed that the entry failed on a success
	// (the 503 was sent; writes are dropped).
	finish       func(*auditWriter)
	done, failed bool
	// object, when set, is the entry's object (a handler's own account
	// of what it acted on, such as an exec's command).
	object string
	// p and pattern are the request's principal (nil: none) and route.
	p       *principal
	pattern string
	// folded is the entry committed with the handler's write
	// (applyAudited), when it was.
	folded *apitypes.AuditEntry
}

// setAuditObject names the object of the request's audit entry, when w
// is audited.
func setAuditObject(w http.ResponseWriter, object string) {
	if aw, ok := w.(*auditWriter); ok {
		aw.object = object
	}
}

// Hijack commits the entry (with the status written so far, 101 for a
// WebSocket) before handing over the connection: an upgraded connection
// (an exec) is audited like a write. When the entry cannot be committed
// the client is answered 503 and nothing is hijacked.
func (a *auditWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !a.done {
		a.finish(a)
	}
	if a.failed {
		return nil, nil, errAnswerWithheld
	}
	return http.NewResponseController(a.w).Hijack()
}

// Unwrap gives http.ResponseController the writer underneath.
func (a *auditWriter) Unwrap() http.ResponseWriter { return a.w }

// errAnswerWithheld ends the writes of a handler whose audit entry failed.
var errAnswerWithheld = errors.New("the answer was withheld: its audit entry could not be committed")

func (a *auditWriter) Header() http.Header { return a.w.Header() }

func (a *auditWriter) WriteHeader(code int) {
	switch {
	case a.failed:
	case a.done:
		a.w.WriteHeader(code)
	case a.code == 0:
		a.code = code
	}
}

func (a *auditWriter) Write(b []byte) (int, error) {
	switch {
	case a.failed:
		return 0, errAnswerWithheld
	case a.done:
		return a.w.Write(b)
	}
	if a.code == 0 {
		a.code = http.StatusOK
	}
	return a.body.Write(b)
}

// Flush commits the entry (once), then flushes what is written.
func (a *auditWriter) Flush() {
	if !a.done {
		a.finish(a)
	}
	if f, ok := a.w.(http.Flusher); ok && !a.failed {
		f.Flush()
	}
}

func (a *auditWriter) status() int {
	if a.code == 0 {
		return http.StatusOK
	}
	return a.code
}

// auditing returns the writer a handler writes to: an auditWriter for
// audited requests (and it), else w itself (and nil). finish is called at
// the first flush or when the handler returns.
func (s *Server) auditing(w http.ResponseWriter, r *http.Request, finish func(*auditWriter)) (http.ResponseWriter, *auditWriter) {
	if s.cfg.Audit == nil || !audited(r) {
		return w, nil
	}
	aw := &auditWriter{w: w, finish: finish}
	return aw, aw
}

// auditEntry is the request's audit entry when it is answered status:
// its object is the handler's own account, else the route's wildcards,
// else object (what the answer names); an admin's tenant is the one the
// request names, else tenant (the answer's).
func (s *Server) auditEntry(aw *auditWriter, r *http.Request, status int, tenant, object string) apitypes.AuditEntry {
	e := apitypes.AuditEntry{Time: s.cfg.Now().UTC(), Method: r.Method, Path: r.URL.Path, Status: status, Node: s.cfg.NodeName}
	if p := aw.p; p != nil {
		e.Actor, e.ActorID, e.Role, e.Tenant = p.token.Name, p.token.ID, string(p.token.Role), p.token.Tenant
		if p.admin() {
			e.Tenant = queryValue(r, "tenant")
			if e.Tenant == "" {
				e.Tenant = tenant
			}
		}
	}
	e.Object = aw.object
	if e.Object == "" {
		e.Object = pathObject(aw.pattern, r)
	}
	if e.Object == "" {
		e.Object = object
	}
	return e
}

// finishAudit commits the request's audit entry, then sends the held
// answer. When the entry cannot be committed, a successful answer becomes
// a 503 (the change may have been applied: the client must look before it
// retries); a refusal is sent as it is, since it changed nothing. An
// entry already committed with the handler's write is not committed
// again; when the answer ended otherwise than that entry says (the store
// did not catch up in time, a read after the write failed), a second
// entry records the answer.
func (s *Server) finishAudit(aw *auditWriter, r *http.Request) {
	aw.done = true
	// The handler that committed the entry with its write named the
	// object and tenant its answer names: only the status can differ.
	if f := aw.folded; f != nil && f.Status == aw.status() {
		s.cfg.Audit.Folded()
		aw.w.WriteHeader(aw.status())
		aw.w.Write(aw.body.Bytes())
		return
	}
	var answer struct {
		ID     any    `json:"id"`
		Name   string `json:"name"`
		Tenant string `json:"tenant"`
	}
	if aw.status() < 300 {
		_ = json.Unmarshal(aw.body.Bytes(), &answer) // not every answer is an object
	}
	var object string
	switch id := answer.ID.(type) {
	case string:
		object = id
	case float64:
		object = strconv.FormatFloat(id, 'f', -1, 64)
	}
	if object == "" {
		object = answer.Name
	}
	e := s.auditEntry(aw, r, aw.status(), answer.Tenant, object)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 15*time.Second)
	err := s.cfg.Audit.Record(ctx, e)
	cancel()
	if err != nil {
		s.log.Warn("audit entry not committed", "method", e.Method, "path", e.Path, "status", e.Status, "err", err)
		if e.Status < 400 {
			aw.failed = true
			aw.w.Header().Del("X-Wharf-Index")
			s.writeError(aw.w, r, &apitypes.Error{Status: http.StatusServiceUnavailable,
				Message: "the request's audit entry could not be committed, so its answer is withheld; the change may have been applied: check before retrying (" + err.Error() + ")"})
			return
		}
	}
	aw.w.WriteHeader(aw.status())
	aw.w.Write(aw.body.Bytes())
}

// pathObject joins the values of the pattern's wildcards ("web",
// "web/r-1"): the object a request on an existing object acts on.
func pathObject(pattern string, r *http.Request) string {
	var parts []string
	for _, seg := range strings.Split(pattern, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
			parts = append(parts, r.PathValue(name))
		}
	}
	return strings.Join(parts, "/")
}

// defaultAuditLimit and maxAuditLimit bound GET /v1/audit's answer.
const (
	defaultAuditLimit = 1000
	maxAuditLimit     = state.DefaultAuditKeep
)

// listAudit serves GET /v1/audit[?since=1h|RFC3339][&tenant=T][&limit=N]:
// the newest entries (at most limit) in the order they were recorded.
// Admins see every entry (or a tenant's with ?tenant=); a tenant-admin
// sees its tenant's; other roles are refused.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.canManageTokens() {
		return errForbidden("reading the audit log needs an admin or tenant-admin token")
	}
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			since = s.cfg.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, v); err == nil {
			since = t
		} else {
			return apitypes.FieldError("since", "since must be a duration such as 1h or an RFC 3339 time, not %q", v)
		}
	}
	limit := defaultAuditLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			return apitypes.FieldError("limit", "limit must be between 1 and %d", maxAuditLimit)
		}
		limit = n
	}
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		es, err := snap.AuditLog(ws)
		if err != nil {
			return nil, 0, err
		}
		out := []apitypes.AuditEntry{}
		for _, e := range es {
			if (tenant == "" || e.Tenant == tenant) && !e.Time.Before(since) {
				out = append(out, audit.Out(e))
			}
		}
		if len(out) > limit {
			out = out[len(out)-limit:]
		}
		return out, snap.Index(state.TableAudit), nil
	})
}
