package apitypes

import "time"

// LogLine is one line of GET /v1/apps/{name}/logs (NDJSON, time order).
type LogLine struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"` // "stdout", "stderr"
	Seq      uint64    `json:"seq"`    // per instance, from 1, no gaps but drops
	Line     string    `json:"line"`
	// Partial marks a piece of a line longer than the agent's limit
	// (16 KiB): the pieces of one line have consecutive seqs of one
	// (instance, stream), and the last has Partial false.
	Partial bool `json:"partial,omitempty"`
}

// LogQuery selects the lines of one app.
type LogQuery struct {
	Tenant, App string
	Since       time.Time // zero: all retained
	Instance    string    // exact instance id; empty: all
	Grep        string    // substring of the line; empty: all
	Limit       int       // newest lines at most; zero: 10,000
	Follow      bool      // then new lines until the request ends
}

// LogsTruncatedTrailer is the HTTP trailer of a log read that left older
// matching lines out (each hub node's answer is bounded in size).
const LogsTruncatedTrailer = "X-Wharf-Truncated"

// MaxLogLimit bounds ?limit= of a log read.
const MaxLogLimit = 100_000
