package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
)

// The internal RPC is HTTP/1.1 over the cluster-key mTLS connections of the
// Raft port (ALPN wharf-rpc/1). Errors travel as a kind code plus a message.

const maxRPCBody = 16 << 20

type rpcError struct {
	Kind         state.Kind `json:"kind"`
	Msg          string     `json:"msg"`
	Field        string     `json:"field,omitempty"`
	NotSubmitted bool       `json:"not_submitted,omitempty"`
}

type rpcAnswer struct {
	Index uint64    `json:"index"`
	Error *rpcError `json:"error,omitempty"`
}

func toRPCError(err error) *rpcError {
	if err == nil {
		return nil
	}
	var se *state.Error
	if errors.As(err, &se) {
		msg := se.Msg
		if se.Kind == state.KindUnavailable {
			msg = err.Error()
		}
		return &rpcError{Kind: se.Kind, Msg: msg, Field: se.Field, NotSubmitted: se.NotSubmitted}
	}
	return &rpcError{Kind: state.KindInternal, Msg: err.Error()}
}

func (e *rpcError) err() error {
	if e == nil {
		return nil
	}
	if e.Kind == state.KindUnavailable {
		return fromLeader{&state.Error{Kind: e.Kind, Msg: "from leader: " + e.Msg, NotSubmitted: e.NotSubmitted}}
	}
	return &state.Error{Kind: e.Kind, Msg: e.Msg, Field: e.Field}
}

// fromLeader is the leader's own "no leader" answer (it lost leadership,
// or timed out committing): it reads as the leader worded it, and it is
// ErrNoLeader to errors.Is, as the same error on this node would be.
type fromLeader struct{ se *state.Error }

func (e fromLeader) Error() string { return e.se.Error() }

func (e fromLeader) Unwrap() error { return e.se }

func (e fromLeader) Is(target error) bool {
	return target == ErrNoLeader || (e.se.NotSubmitted && target == errNotSubmitted)
}

func (c *Cluster) startRPC() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		msg, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody))
		if err != nil {
			return
		}
		var ans rpcAnswer
		if !c.IsLeader() {
			ans.Error = toRPCError(errNotSubmitted)
		} else {
			var err error
			ans.Index, err = c.applyLocal(r.Context(), msg)
			ans.Error = toRPCError(err)
		}
		json.NewEncoder(w).Encode(ans)
	})
	mux.HandleFunc("POST /readindex", func(w http.ResponseWriter, r *http.Request) {
		var ans rpcAnswer
		var err error
		ans.Index, err = c.readIndex(r.Context())
		ans.Error = toRPCError(err)
		json.NewEncoder(w).Encode(ans)
	})
	mux.HandleFunc("/x/", c.serveRPC)
	c.rpcSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go c.rpcSrv.Serve(newChanListener(c.mux, c.mux.rpc))
	go c.servePipes(newChanListener(c.mux, c.mux.fwd))
	c.rpcClient = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return c.mux.dial(ctx, addr, alpnRPC)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
	}}
}

// Handle registers the features' RPC handlers, each name once. Register
// them before Run: until then, calls to them are answered 404.
func (c *Cluster) Handle(hs ...Handler) error {
	c.rpcMu.Lock()
	defer c.rpcMu.Unlock()
	if c.rpcs == nil {
		c.rpcs = map[string]http.Handler{}
	}
	for _, h := range hs {
		if h.Name == "" || strings.Contains(h.Name, "/") || h.http == nil {
			return fmt.Errorf("rpc %q: a name without '/' and a handler are required", h.Name)
		}
		if c.rpcs[h.Name] != nil {
			return fmt.Errorf("rpc %q registered twice", h.Name)
		}
		c.rpcs[h.Name] = h.http
	}
	return nil
}

func (c *Cluster) rpcHandler(name string) http.Handler {
	c.rpcMu.RLock()
	defer c.rpcMu.RUnlock()
	return c.rpcs[name]
}

// serveRPC serves POST /x/NAME, and any method on /x/NAME/... (with
// /x/NAME cut off the path) for the RPCs that proxy requests.
func (c *Cluster) serveRPC(w http.ResponseWriter, r *http.Request) {
	name, _, hasSub := strings.Cut(strings.TrimPrefix(r.URL.Path, "/x/"), "/")
	h := c.rpcHandler(name)
	switch {
	case h == nil:
		http.NotFound(w, r)
	case hasSub:
		http.StripPrefix("/x/"+name, h).ServeHTTP(w, r)
	case r.Method != http.MethodPost:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		h.ServeHTTP(w, r)
	}
}

func (c *Cluster) call(ctx context.Context, addr, path string, body []byte) (uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := c.rpcClient.Do(req)
	if err != nil {
		// The request may have reached the leader: the outcome is unknown.
		return 0, fmt.Errorf("%w: rpc to leader %s: %v", ErrNoLeader, addr, err)
	}
	defer resp.Body.Close()
	var ans rpcAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRPCBody)).Decode(&ans); err != nil {
		return 0, fmt.Errorf("%w: rpc answer from %s: %v", ErrNoLeader, addr, err)
	}
	return ans.Index, ans.Error.err()
}

func (c *Cluster) forwardApply(ctx context.Context, addr string, msg []byte) (uint64, error) {
	return c.call(ctx, addr, "/apply", msg)
}

func (c *Cluster) forwardReadIndex(ctx context.Context, addr string) (uint64, error) {
	return c.call(ctx, addr, "/readindex", nil)
}

// CallLeader posts body to the leader's handler name (Handle) over the
// internal RPC and returns its answer. On the leader it calls the handler
// directly.
func (c *Cluster) CallLeader(ctx context.Context, name string, body []byte) ([]byte, error) {
	addr, err := c.leaderAddr(ctx)
	if err != nil {
		return nil, err
	}
	b, err := c.CallNode(ctx, addr, name, body)
	if err != nil && addr != c.raftAddr {
		var re rpcStatusError
		if !errors.As(err, &re) {
			err = fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
	}
	return b, err
}

// rpcStatusError is a handler's non-200 answer.
type rpcStatusError struct{ msg string }

func (e rpcStatusError) Error() string { return e.msg }

// CallNode posts body to handler name (Handle) of the node whose
// Raft/RPC address is addr, and returns its answer. For this node's own
// address it calls the handler directly.
func (c *Cluster) CallNode(ctx context.Context, addr, name string, body []byte) ([]byte, error) {
	h := c.rpcHandler(name)
	if h == nil {
		return nil, fmt.Errorf("no RPC handler %q", name)
	}
	if addr == c.raftAddr {
		rec := &responseRecorder{header: http.Header{}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/x/"+name, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		h.ServeHTTP(rec, req)
		return rec.body.Bytes(), rec.err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/x/"+name, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.rpcClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rpc to %s: %w", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCBody))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = rpcStatusError{fmt.Sprintf("rpc %s: %s: %s", name, resp.Status, bytes.TrimSpace(b))}
	}
	return b, err
}

// Servers returns the Raft/RPC addresses of the servers in the Raft
// configuration, this node's included.
func (c *Cluster) Servers() []string {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return []string{c.raftAddr}
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		out = append(out, string(s.Address))
	}
	if len(out) == 0 {
		out = []string{c.raftAddr}
	}
	return out
}

// responseRecorder captures a handler's answer for local calls.
type responseRecorder struct {
	header http.Header
	body   bytes.Buffer
	code   int
}

func (r *responseRecorder) Header() http.Header         { return r.header }
func (r *responseRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *responseRecorder) WriteHeader(code int)        { r.code = code }

func (r *responseRecorder) err() error {
	if r.code != 0 && r.code != http.StatusOK {
		return fmt.Errorf("rpc: %d: %s", r.code, bytes.TrimSpace(r.body.Bytes()))
	}
	return nil
}

// ProxyToLeader sends r, as it is, to the leader's RPC handler name (its
// path appended) and copies the answer to w. It returns false, having
// written nothing, when this node is the leader or no leader is known.
func (c *Cluster) ProxyToLeader(w http.ResponseWriter, r *http.Request, name string) bool {
	if c.IsLeader() {
		return false
	}
	addr, _ := c.raft.LeaderWithID()
	if addr == "" {
		return false
	}
	forward(w, r, string(addr), name, c.rpcClient.Transport, c.pipeTo)
	return true
}

// forward sends r to the RPC handler name at addr and copies the answer
// to w: through a pipe when r can go through one and pipeTo (when set)
// has one, else as HTTP through tr. A small body is read first, so that
// it goes with the request's headers (smallBody).
func forward(w http.ResponseWriter, r *http.Request, addr, name string, tr http.RoundTripper, pipeTo func(addr string) *pipe) {
	body, err := smallBody(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	if pipeTo != nil && pipeable(r, body) {
		if p := pipeTo(addr); p != nil {
			p.forward(w, r, addr, name, body)
			return
		}
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.Out.URL.Path = "/x/" + name + pr.In.URL.Path
			pr.Out.Host = pr.In.Host
			if body != nil {
				pr.Out.Body = io.NopCloser(bytes.NewReader(body))
			}
		},
		Transport:  tr,
		BufferPool: proxyBuffers{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Retry-After", "1")
			jsonError(w, http.StatusServiceUnavailable, fmt.Sprintf("no cluster leader: forward to %s: %v", addr, err))
		},
	}
	proxy.ServeHTTP(w, r)
}

// jsonError answers with code and the API's error body.
func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// maxWholeBody is the largest request body a follower reads whole
// before it forwards the request.
const maxWholeBody = 64 << 10

// smallBody reads a small request body whole (nil for none or a large
// one). The HTTP transport sends the headers of a request whose body it
// cannot see into on their own, then the body: two TLS records, two
// writes here and two reads at the leader for each forwarded API write. A
// body in memory goes with its headers in one. Larger bodies, or bodies of
// unknown length, stream.
func smallBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.ContentLength <= 0 || r.ContentLength > maxWholeBody {
		return nil, nil
	}
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// proxyBuffers lends ReverseProxy its copy buffers; without them it
// allocates 32 KB for every request it forwards, most of a forwarded
// write's garbage. Up to 64 idle buffers (2 MB) are kept, as many as the
// RPC client keeps connections to a node: a channel rather than a
// sync.Pool, which the GC empties and the race detector drops from.
type proxyBuffers struct{}

var proxyFree = make(chan []byte, 64)

func (proxyBuffers) Get() []byte {
	select {
	case b := <-proxyFree:
		return b
	default:
		return make([]byte, 32<<10)
	}
}

func (proxyBuffers) Put(b []byte) {
	select {
	case proxyFree <- b:
	default:
	}
}
