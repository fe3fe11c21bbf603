package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/protobuf/proto"
)

// An internal RPC is declared once, by the feature that serves it, as an
// RPC value: its name and the codecs of its request and answer. The same
// value registers the handler (Serve, then Cluster.Handle) and makes the
// calls (Call, CallLeader), so both ends agree on the name and the
// encoding.

// Codec encodes one side of an RPC.
type Codec[T any] interface {
	Marshal(v T) ([]byte, error)
	Unmarshal(b []byte) (T, error)
}

// JSON encodes values as JSON; an empty body is the zero value.
type JSON[T any] struct{}

// Marshal encodes v.
func (JSON[T]) Marshal(v T) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes b.
func (JSON[T]) Unmarshal(b []byte) (T, error) {
	var v T
	if len(bytes.TrimSpace(b)) == 0 {
		return v, nil
	}
	err := json.Unmarshal(b, &v)
	return v, err
}

// Proto encodes protobuf messages; M is a pointer to a generated message.
type Proto[M proto.Message] struct {
	// New returns an empty message to decode into.
	New func() M
}

// Marshal encodes m.
func (Proto[M]) Marshal(m M) ([]byte, error) { return proto.Marshal(m) }

// Unmarshal decodes b.
func (c Proto[M]) Unmarshal(b []byte) (M, error) {
	m := c.New()
	return m, proto.Unmarshal(b, m)
}

// Text carries a string as the body's bytes.
type Text struct{}

// Marshal encodes s.
func (Text) Marshal(s string) ([]byte, error) { return []byte(s), nil }

// Unmarshal decodes b.
func (Text) Unmarshal(b []byte) (string, error) { return string(b), nil }

// None is the codec of an RPC that carries nothing on that side.
type None struct{}

// Marshal encodes nothing.
func (None) Marshal(struct{}) ([]byte, error) { return nil, nil }

// Unmarshal ignores b.
func (None) Unmarshal([]byte) (struct{}, error) { return struct{}{}, nil }

// RPC is one internal call: a name unique in the cluster and the codecs of
// its request and answer.
type RPC[Req, Resp any] struct {
	Name string
	Req  Codec[Req]
	Resp Codec[Resp]
	// MaxBody bounds a request's body. Zero: the internal RPC's limit.
	MaxBody int64
}

// Handler is an RPC ready to be registered with Cluster.Handle.
type Handler struct {
	Name string
	http http.Handler
}

// ServeHTTP serves the RPC's requests as the cluster does (tests of the
// features call it through their own in-memory callers).
func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.http.ServeHTTP(w, r) }

// Raw registers an http.Handler as is, for RPCs that stream or proxy
// (the forwarded API requests).
func Raw(name string, h http.Handler) Handler { return Handler{Name: name, http: h} }

// BadRequest marks an error as the caller's: the RPC answers 400.
type BadRequest struct{ Err error }

func (e BadRequest) Error() string { return e.Err.Error() }
func (e BadRequest) Unwrap() error { return e.Err }

// Serve returns the registration of this RPC served by f. A request that
// does not decode, or an error from f that is a BadRequest, is answered
// 400; other errors 500, with the error's text.
func (r RPC[Req, Resp]) Serve(f func(ctx context.Context, req Req) (Resp, error)) Handler {
	limit := r.MaxBody
	if limit == 0 {
		limit = maxRPCBody
	}
	return Handler{Name: r.Name, http: http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		body, err := io.ReadAll(io.LimitReader(hr.Body, limit))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, err := r.Req.Unmarshal(body)
		if err != nil {
			http.Error(w, fmt.Sprintf("%s: %v", r.Name, err), http.StatusBadRequest)
			return
		}
		resp, err := f(hr.Context(), req)
		if err == nil {
			var b []byte
			if b, err = r.Resp.Marshal(resp); err == nil {
				w.Write(b)
				return
			}
		}
		code := http.StatusInternalServerError
		if _, ok := err.(BadRequest); ok {
			code = http.StatusBadRequest
		}
		http.Error(w, err.Error(), code)
	})}
}

// NodeCaller calls an RPC of one node by its Raft/RPC address
// (Cluster.CallNode).
type NodeCaller interface {
	CallNode(ctx context.Context, addr, name string, body []byte) ([]byte, error)
}

// LeaderCaller calls an RPC of the leader (Cluster.CallLeader).
type LeaderCaller interface {
	CallLeader(ctx context.Context, name string, body []byte) ([]byte, error)
}

// Call sends req to the node at addr and decodes its answer.
func (r RPC[Req, Resp]) Call(ctx context.Context, c NodeCaller, addr string, req Req) (Resp, error) {
	body, err := r.Req.Marshal(req)
	if err != nil {
		var zero Resp
		return zero, fmt.Errorf("%s: %w", r.Name, err)
	}
	return r.answer(c.CallNode(ctx, addr, r.Name, body))
}

// CallLeader sends req to the leader and decodes its answer.
func (r RPC[Req, Resp]) CallLeader(ctx context.Context, c LeaderCaller, req Req) (Resp, error) {
	body, err := r.Req.Marshal(req)
	if err != nil {
		var zero Resp
		return zero, fmt.Errorf("%s: %w", r.Name, err)
	}
	return r.answer(c.CallLeader(ctx, r.Name, body))
}

func (r RPC[Req, Resp]) answer(b []byte, err error) (Resp, error) {
	if err != nil {
		var zero Resp
		return zero, err
	}
	resp, err := r.Resp.Unmarshal(b)
	if err != nil {
		return resp, fmt.Errorf("%s answer: %w", r.Name, err)
	}
	return resp, nil
}
