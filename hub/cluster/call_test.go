package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTypedRPCs: an RPC declared once serves and calls between real
// nodes (over the mTLS RPC port, and in-process for a node's own
// address); a name is registered once; a request that does not decode,
// or that the handler calls the caller's fault, is answered 400.
func TestTypedRPCs(t *testing.T) {
	key, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	nodes := cluster3(t, key)
	type echo struct {
		Text string `json:"text"`
	}
	echoRPC := RPC[echo, string]{Name: "echo", Req: JSON[echo]{}, Resp: JSON[string]{}}
	picky := RPC[string, struct{}]{Name: "picky", Req: Text{}, Resp: None{}}
	for _, n := range nodes {
		name := n.cfg.NodeName
		err := n.c.Handle(
			echoRPC.Serve(func(_ context.Context, e echo) (string, error) { return name + ":" + e.Text, nil }),
			picky.Serve(func(_ context.Context, s string) (struct{}, error) {
				if s != "ok" {
					return struct{}{}, BadRequest{Err: errors.New("not ok")}
				}
				return struct{}{}, nil
			}),
		)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[0].c.Handle(echoRPC.Serve(func(context.Context, echo) (string, error) { return "", nil })); err == nil {
		t.Fatal("a second handler for echo was accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		// A loaded machine may elect a new leader during the call: the
		// answer must come from the node that led before and after it,
		// and a call during an election (no leader, or another one,
		// after it) is tried again.
		for attempt := 1; ; attempt++ {
			before := leaderOf(nodes)
			got, err := echoRPC.CallLeader(ctx, n.c, echo{"hi"})
			after := leaderOf(nodes)
			if before == nil || before != after {
				if attempt < 10 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				t.Fatalf("no stable leader around 10 calls (leader %s, then %s)", nameOf(before), nameOf(after))
			}
			if err != nil || got != nameOf(before)+":hi" {
				t.Fatalf("CallLeader from %s: %q %v (leader %s throughout)", n.cfg.NodeName, got, err, nameOf(before))
			}
			break
		}
		for _, to := range nodes {
			got, err := echoRPC.Call(ctx, n.c, to.c.RaftAddr(), echo{"x"})
			if err != nil || got != to.cfg.NodeName+":x" {
				t.Fatalf("%s calls %s: %q %v", n.cfg.NodeName, to.cfg.NodeName, got, err)
			}
		}
	}
	if _, err := picky.Call(ctx, nodes[0].c, nodes[1].c.RaftAddr(), "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := picky.Call(ctx, nodes[0].c, nodes[1].c.RaftAddr(), "no"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("a refused request: %v", err)
	}
	if _, err := nodes[0].c.CallNode(ctx, nodes[1].c.RaftAddr(), "echo", []byte("{not json")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("a request that does not decode: %v", err)
	}
	if _, err := nodes[0].c.CallNode(ctx, nodes[1].c.RaftAddr(), "nobody", nil); err == nil {
		t.Fatal("an unregistered RPC answered")
	}
}

// nameOf is a node's name, or "none" for no node.
func nameOf(n *node) string {
	if n == nil {
		return "none"
	}
	return n.cfg.NodeName
}
