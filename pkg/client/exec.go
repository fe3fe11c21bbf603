package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// ExecOptions is a command to run in an instance of an app. Nil Stdin:
// the command's input is empty; nil Stdout or Stderr: discarded.
type ExecOptions struct {
	Tenant   string
	Instance string // "": the app's first running instance
	Cmd      []string
	TTY      bool
	Size     apitypes.TermSize // the terminal's first size (TTY)
	// Resize, when set, carries the terminal's new sizes.
	Resize         <-chan apitypes.TermSize
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Exec runs o.Cmd in an instance of app through the hub (a WebSocket, see
// apitypes.ExecProtocol) and returns the command's exit code. An error
// means Wharf could not run it or lost it: a refusal is an
// *apitypes.Error.
func (a *Apps) Exec(ctx context.Context, app string, o ExecOptions) (int, error) {
	q := url.Values{"cmd": o.Cmd}
	if o.Tenant != "" {
		q.Set("tenant", o.Tenant)
	}
	if o.Instance != "" {
		q.Set("instance", o.Instance)
	}
	if o.TTY {
		q.Set("tty", "1")
		if o.Size.Cols > 0 && o.Size.Rows > 0 {
			q.Set("cols", strconv.Itoa(int(o.Size.Cols)))
			q.Set("rows", strconv.Itoa(int(o.Size.Rows)))
		}
	}
	if o.Stdin != nil {
		q.Set("stdin", "1")
	}
	h := http.Header{}
	if a.c.token != "" {
		h.Set("Authorization", "Bearer "+a.c.token)
	}
	conn, resp, err := websocket.Dial(ctx, a.c.url(appPath(app, "/exec"), q), &websocket.DialOptions{
		HTTPClient: a.c.hc, HTTPHeader: h, Subprotocols: []string{apitypes.ExecProtocol},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return -1, refusal(resp)
		}
		return -1, err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	send := func(ch byte, payload []byte) error {
		return conn.Write(ctx, websocket.MessageBinary, append([]byte{ch}, payload...))
	}
	if o.Stdin != nil {
		go func() {
			buf := make([]byte, 16<<10)
			for {
				n, err := o.Stdin.Read(buf)
				if n > 0 && send(apitypes.ExecChanStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					_ = send(apitypes.ExecChanStdinEOF, nil)
					return
				}
			}
		}()
	}
	if o.Resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					b, _ := json.Marshal(sz)
					if send(apitypes.ExecChanResize, b) != nil {
						return
					}
				}
			}
		}()
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return -1, fmt.Errorf("exec: the connection to the hub ended before the command's exit code: %w", err)
		}
		if len(b) == 0 {
			continue
		}
		var w io.Writer
		switch b[0] {
		case apitypes.ExecChanStdout:
			w = o.Stdout
		case apitypes.ExecChanStderr:
			w = o.Stderr
		case apitypes.ExecChanStatus:
			var st apitypes.ExecStatus
			if err := json.Unmarshal(b[1:], &st); err != nil {
				return -1, fmt.Errorf("exec: bad status from the hub: %w", err)
			}
			conn.Close(websocket.StatusNormalClosure, "")
			if st.Error != "" {
				return -1, &apitypes.Error{Status: st.Status, Message: st.Error}
			}
			return st.ExitCode, nil
		}
		if w != nil {
			if _, err := w.Write(b[1:]); err != nil {
				return -1, err
			}
		}
	}
}

// refusal decodes the hub's answer to an exec it did not upgrade.
func refusal(resp *http.Response) error {
	e := &apitypes.Error{Status: resp.StatusCode}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
	}
	e.Status = resp.StatusCode
	if e.Message == "" {
		e.Message = resp.Status
	}
	return e
}
