//go:build !unix

package cli

// lockDataDir is a no-op where flock is missing.
func lockDataDir(string) (func(), error) { return func() {}, nil }

// redirectStderr leaves stderr alone where dup2 is missing: the hub's logs
// stay on the terminal.
func redirectStderr(string) (func(), error) { return func() {}, nil }
