package apitypes

// GET /v1/apps/{name}/exec is a WebSocket (subprotocol ExecProtocol).
// Every message is binary: its first byte is a channel, the rest the
// payload. The client sends stdin, resizes and the end of its stdin; the
// hub sends output and, last, the status, then closes the socket.
const (
	ExecProtocol = "v1.exec.wharf.dev"

	ExecChanStdin    byte = 0 // client -> hub: input bytes
	ExecChanStdout   byte = 1 // hub -> client: output (with a TTY, all of it)
	ExecChanStderr   byte = 2 // hub -> client: error output (without a TTY)
	ExecChanStatus   byte = 3 // hub -> client, last: an ExecStatus in JSON
	ExecChanResize   byte = 4 // client -> hub: a TermSize in JSON
	ExecChanStdinEOF byte = 5 // client -> hub: no more input (no payload)
)

// TermSize is a terminal's size in character cells.
type TermSize struct {
	Cols uint16 `json:"cols"`
	Rows uint16 `json:"rows"`
}

// ExecStatus ends an exec: the command's exit code, or, when Wharf itself
// failed (the agent could not run the command, the host went away), an
// error and an HTTP-like status.
type ExecStatus struct {
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	Status   int    `json:"status,omitempty"`
}
