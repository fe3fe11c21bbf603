package apitypes

import "time"

// DrillRequest is the body of POST /v1/drills: one pool or one datacenter,
// and the mode.
type DrillRequest struct {
	Pool       string `json:"pool,omitempty"`
	Datacenter string `json:"datacenter,omitempty"`
	Mode       string `json:"mode"` // "cutoff" or "evacuate"
}

// Validate checks the request.
func (r *DrillRequest) Validate() error {
	if (r.Pool == "") == (r.Datacenter == "") {
		return FieldError("pool", "name exactly one of pool or datacenter")
	}
	if r.Mode != "cutoff" && r.Mode != "evacuate" {
		return FieldError("mode", "mode must be cutoff or evacuate")
	}
	return nil
}

// Drill is a drill and its report (GET /v1/drills/{id}). The *_ms fields
// count from the start; -1 means not reached (yet).
type Drill struct {
	ID             string         `json:"id"`
	Pool           string         `json:"pool,omitempty"`
	Datacenter     string         `json:"datacenter,omitempty"`
	Mode           string         `json:"mode"`
	State          string         `json:"state"` // running or ended
	Hosts          []string       `json:"hosts"`
	Apps           map[string]int `json:"apps"` // "tenant/app" -> instances that ran on the target
	StartedAt      time.Time      `json:"started_at"`
	EndedAt        *time.Time     `json:"ended_at,omitempty"`
	DetectedMs     int64          `json:"detected_ms"`
	ScheduledMs    int64          `json:"scheduled_ms"`
	ReadyMs        int64          `json:"ready_ms"`
	RoutedMs       int64          `json:"routed_ms"`
	FailedRequests uint64         `json:"failed_requests"`
}
