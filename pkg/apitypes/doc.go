// Package apitypes holds the JSON shapes of Wharf's REST API (/v1), shared by
// the hub's HTTP handlers, the Go client and the CLI. It imports nothing of
// the hub or the agent.
package apitypes
