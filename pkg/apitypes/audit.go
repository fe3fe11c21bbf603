package apitypes

import "time"

// AuditEntry is one row of GET /v1/audit: a mutating request (POST, PUT,
// PATCH, DELETE), whether it succeeded or was refused. It never holds a
// request body or a query string.
type AuditEntry struct {
	// Seq numbers the audit log from 1.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is the token's name and ActorID its id; both are empty for a
	// request without a valid token.
	Actor   string `json:"actor"`
	ActorID string `json:"actor_id,omitempty"`
	Role    string `json:"role"`
	Tenant  string `json:"tenant"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Status  int    `json:"status"`
	// Object is the name or id acted on: the path's names, else the name
	// or id of what the request created.
	Object string `json:"object"`
	// Node is the hub node that answered.
	Node string `json:"node,omitempty"`
}
