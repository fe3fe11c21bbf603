package apitypes

import "time"

// LogDrainRequest is the body of POST /v1/apps/{name}/log-drains.
type LogDrainRequest struct {
	// URL: syslog://HOST:PORT (TCP), syslog+tls://HOST:PORT,
	// loki+http(s)://HOST[:PORT][/PATH], es+http(s)://HOST[:PORT][/INDEX].
	URL string `json:"url"`
}

// LogDrain is a drain as the API shows it (credentials redacted).
type LogDrain struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	URL       string    `json:"url"`
	Kind      string    `json:"kind"` // syslog, syslog+tls, loki, es
	CreatedAt time.Time `json:"created_at"`
}

// AlertRule is the body of POST /v1/alerts and an element of GET
// /v1/alerts: a rule on an app (its tenant's) or, for admins, on a pool.
type AlertRule struct {
	ID     string `json:"id,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	App    string `json:"app,omitempty"`
	Pool   string `json:"pool,omitempty"`
	// Metric: cpu, memory, qps, restarts (apps); cpu, memory, host_down
	// (pools).
	Metric string `json:"metric"`
	Above  string `json:"above,omitempty"` // "80%", "512MiB", "100"
	Below  string `json:"below,omitempty"`
	For    string `json:"for,omitempty"` // Go duration; default 0
	// Webhook receives firing and resolving notifications (JSON POST,
	// signed with Secret: X-Wharf-Signature: sha256=HMAC(secret,
	// timestamp + "." + body)). Secret is never shown back.
	Webhook   string    `json:"webhook,omitempty"`
	Secret    string    `json:"secret,omitempty"`
	State     string    `json:"state,omitempty"` // "firing" while it fires (GET)
	CreatedAt time.Time `json:"created_at,omitempty"`
}
