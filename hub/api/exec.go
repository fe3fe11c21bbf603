package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Execer runs commands in instances through the agents' connections to
// this hub node.
type Execer interface {
	// Connected reports whether host's agent is connected to this node.
	Connected(hostID string) bool
	// Exec runs req on host's agent and returns the command's exit code;
	// an error when Wharf could not run it.
	Exec(ctx context.Context, hostID string, req ExecRequest) (int, error)
	// APIAddr returns the API address (host:port) of the hub node named
	// node, "" when unknown.
	APIAddr(node string) string
}

// ExecRequest is a command to run in an instance. Nil Stdin: none.
type ExecRequest struct {
	Instance       string
	Cmd            []string
	TTY            bool
	Size           apitypes.TermSize
	Resize         <-chan apitypes.TermSize
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Bounds of an exec's command line.
const (
	maxExecArgs  = 256
	maxExecBytes = 32 << 10
)

// execApp serves GET /v1/apps/{name}/exec?cmd=ARG&cmd=ARG...
// [&instance=ID][&tty=1][&stdin=1][&cols=N&rows=N][&tenant=T]: a
// WebSocket (apitypes.ExecProtocol) to a command in one of the app's
// instances (the given one, else the first running one). Developers and
// above only; every exec is audited, its command in the entry's object.
//
// The command runs through the hub node the instance's host's agent is
// connected to: a node without that connection proxies the request there
// (one hop, on the API address that node publishes in the cluster's
// gossip), so any node may take it.
func (s *Server) execApp(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.canWriteApps() {
		return errForbidden("a " + string(p.token.Role) + " token cannot run commands in instances")
	}
	tenant, err := tenantScope(r, p, true)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	req, err := execRequestOf(q)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	inst, err := s.execInstance(r.Context(), tenant, name, q.Get("instance"))
	if err != nil {
		return err
	}
	req.Instance = inst.ID
	setAuditObject(w, name+"/"+inst.ID+" -- "+strings.Join(req.Cmd, " "))
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return &apitypes.Error{Status: http.StatusBadRequest, Message: "exec is a WebSocket: send Upgrade: websocket (wharf app exec does)"}
	}
	if s.cfg.Exec == nil {
		return &apitypes.Error{Status: http.StatusNotImplemented, Message: "this hub node runs no agent gateway"}
	}
	if !s.cfg.Exec.Connected(inst.Host) {
		return s.proxyExec(w, r, inst.Host)
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{apitypes.ExecProtocol}})
	if err != nil {
		return nil // Accept answered the client
	}
	defer c.CloseNow()
	c.SetReadLimit(maxExecBytes + 1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	resize := make(chan apitypes.TermSize, 1)
	req.Resize = resize
	var stdinW *io.PipeWriter
	if req.Stdin != nil {
		var stdinR *io.PipeReader
		stdinR, stdinW = io.Pipe()
		req.Stdin = stdinR
		defer stdinR.Close()
	}
	go func() {
		err := readExecInput(ctx, c, stdinW, resize)
		if stdinW != nil {
			stdinW.CloseWithError(err)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			cancel() // the client went away: the command is killed
		}
	}()
	req.Stdout = execOutput{ctx: ctx, c: c, ch: apitypes.ExecChanStdout}
	req.Stderr = execOutput{ctx: ctx, c: c, ch: apitypes.ExecChanStderr}
	code, err := s.cfg.Exec.Exec(ctx, inst.Host, req)
	st := apitypes.ExecStatus{ExitCode: code}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		st = apitypes.ExecStatus{ExitCode: -1, Error: err.Error(), Status: http.StatusBadGateway}
	}
	b, _ := json.Marshal(st)
	if err := c.Write(ctx, websocket.MessageBinary, append([]byte{apitypes.ExecChanStatus}, b...)); err != nil {
		return nil
	}
	c.Close(websocket.StatusNormalClosure, "")
	return nil
}

// execRequestOf reads the command and terminal from the query.
func execRequestOf(q map[string][]string) (ExecRequest, error) {
	var req ExecRequest
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	req.Cmd = q["cmd"]
	size := 0
	for _, a := range req.Cmd {
		size += len(a)
	}
	switch {
	case len(req.Cmd) == 0 || req.Cmd[0] == "":
		return req, apitypes.FieldError("cmd", "give the command to run, one cmd= parameter per argument")
	case len(req.Cmd) > maxExecArgs || size > maxExecBytes:
		return req, apitypes.FieldError("cmd", "the command is too long (at most %d arguments, %d bytes)", maxExecArgs, maxExecBytes)
	}
	flag := func(k string) (bool, error) {
		switch get(k) {
		case "", "0", "false":
			return false, nil
		case "1", "true":
			return true, nil
		}
		return false, apitypes.FieldError(k, "%s must be 1 or 0", k)
	}
	var err error
	if req.TTY, err = flag("tty"); err != nil {
		return req, err
	}
	stdin, err := flag("stdin")
	if err != nil {
		return req, err
	}
	if stdin {
		req.Stdin = strings.NewReader("") // replaced by the socket's input
	}
	for _, d := range []struct {
		k string
		v *uint16
	}{{"cols", &req.Size.Cols}, {"rows", &req.Size.Rows}} {
		if v := get(d.k); v != "" {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return req, apitypes.FieldError(d.k, "%s must be a number of character cells", d.k)
			}
			*d.v = uint16(n)
		}
	}
	return req, nil
}

// execInstance picks the instance to run in: the named one, which must
// be the app's, else the app's first running one.
func (s *Server) execInstance(ctx context.Context, tenant, app, id string) (*state.Instance, error) {
	snap := s.cfg.Store.Snapshot()
	a, err := snap.App(nil, tenant, app)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errNotFound("app", app)
	}
	is, err := snap.AppInstances(nil, tenant, app)
	if err != nil {
		return nil, err
	}
	is = slices.DeleteFunc(slices.Clone(is), func(i *state.Instance) bool { return id != "" && i.ID != id })
	slices.SortFunc(is, func(a, b *state.Instance) int { return strings.Compare(a.ID, b.ID) })
	if id != "" && len(is) == 0 {
		return nil, errNotFound("instance", id)
	}
	for _, i := range is {
		if i.State == state.InstanceRunning && i.Host != "" {
			return i, nil
		}
	}
	if id != "" {
		return nil, &apitypes.Error{Status: http.StatusConflict, Message: fmt.Sprintf("instance %s is %s, not running", id, is[0].State)}
	}
	return nil, &apitypes.Error{Status: http.StatusConflict, Message: "app " + app + " has no running instance"}
}

// proxyExec hands the request to the hub node host's agent is connected
// to. Only one hop: a forwarded request that finds no agent here fails.
func (s *Server) proxyExec(w http.ResponseWriter, r *http.Request, host string) error {
	unavailable := &apitypes.Error{Status: http.StatusServiceUnavailable, Message: "host " + host + "'s agent is not connected to the hub; retry once it is"}
	if r.Header.Get(ForwardedHeader) != "" || s.cfg.Hosts == nil {
		return unavailable
	}
	hc, err := s.cfg.Hosts.HostConn(r.Context(), host)
	if err != nil {
		return err
	}
	addr := s.cfg.Exec.APIAddr(hc.HubNode)
	if addr == "" || hc.HubNode == s.cfg.NodeName {
		return unavailable
	}
	// The node that runs the exec records it.
	if aw, ok := w.(*auditWriter); ok {
		aw.done = true
		w = aw.w
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", addr
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(ForwardedHeader, "1")
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.writeError(w, r, &apitypes.Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("forward the exec to hub node %s (%s): %v", hc.HubNode, addr, err)})
		},
	}
	proxy.ServeHTTP(w, r)
	return nil
}

// readExecInput feeds the client's stdin and sizes to the exec until the
// client ends its input (io.EOF on stdin) or goes away (the error).
func readExecInput(ctx context.Context, c *websocket.Conn, stdin *io.PipeWriter, resize chan apitypes.TermSize) error {
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			continue
		}
		switch b[0] {
		case apitypes.ExecChanStdin:
			if stdin != nil {
				if _, err := stdin.Write(b[1:]); err != nil && !errors.Is(err, io.ErrClosedPipe) {
					return err
				}
			}
		case apitypes.ExecChanStdinEOF:
			if stdin != nil {
				stdin.Close()
			}
		case apitypes.ExecChanResize:
			var sz apitypes.TermSize
			if json.Unmarshal(b[1:], &sz) != nil || sz.Cols == 0 || sz.Rows == 0 {
				continue
			}
			select { // only the newest size matters
			case <-resize:
			default:
			}
			resize <- sz
		}
	}
}

// execOutput sends one output stream to the client.
type execOutput struct {
	ctx context.Context // the exec's: a write to a client that went away ends with it
	c   *websocket.Conn
	ch  byte
}

func (o execOutput) Write(p []byte) (int, error) {
	if err := o.c.Write(o.ctx, websocket.MessageBinary, append([]byte{o.ch}, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
