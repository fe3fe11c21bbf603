package hub_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/hubtest/deadline"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// The register model: each app is a register whose value is its desired
// instance count and whose version is its modify index. Reads return both;
// writes return the new index; CAS writes only if the index is unchanged.
// An operation whose outcome is unknown (timeout, connection lost) may or
// may not have happened; when it happened its new index is unknown, which
// the state records as index 0 ("any").

type opKind int

const (
	opRead opKind = iota
	opWrite
	opCAS
)

type linInput struct {
	Kind   opKind
	Key    string
	Value  int
	Expect uint64 // CAS: the modify index it expects
}

type linOutput struct {
	Unknown bool
	NotSent bool // refused before it reached a node, or the hub says it never reached a leader
	Value   int
	Index   uint64
	OK      bool // CAS: applied
}

type register struct {
	Value int
	Index uint64 // 0: unknown after an operation with unknown outcome
}

var registerModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{register{Value: 0, Index: 0}} },
	Step: func(state, input, output interface{}) []interface{} {
		s, in, out := state.(register), input.(linInput), output.(linOutput)
		matches := func(idx uint64) bool { return s.Index == 0 || s.Index == idx }
		switch in.Kind {
		case opRead:
			if out.Unknown {
				return []interface{}{s}
			}
			if s.Value == out.Value && matches(out.Index) {
				return []interface{}{register{out.Value, out.Index}}
			}
			return nil
		case opWrite:
			if out.Unknown {
				return []interface{}{register{in.Value, 0}, s}
			}
			if s.Index != 0 && out.Index <= s.Index {
				return nil // indexes only grow
			}
			return []interface{}{register{in.Value, out.Index}}
		case opCAS:
			if out.Unknown {
				if matches(in.Expect) {
					return []interface{}{register{in.Value, 0}, s}
				}
				return []interface{}{s}
			}
			if out.OK {
				if matches(in.Expect) && (s.Index == 0 || out.Index > s.Index) {
					return []interface{}{register{in.Value, out.Index}}
				}
				return nil
			}
			if s.Index == 0 || s.Index != in.Expect {
				return []interface{}{s}
			}
			return nil
		}
		return nil
	},
	Equal: func(a, b interface{}) bool { return a.(register) == b.(register) },
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(linInput), output.(linOutput)
		res := fmt.Sprintf("-> v=%d idx=%d ok=%v", out.Value, out.Index, out.OK)
		if out.Unknown {
			res = "-> unknown"
		}
		switch in.Kind {
		case opRead:
			return fmt.Sprintf("read(%s) %s", in.Key, res)
		case opWrite:
			return fmt.Sprintf("write(%s, %d) %s", in.Key, in.Value, res)
		default:
			return fmt.Sprintf("cas(%s, idx %d, %d) %s", in.Key, in.Expect, in.Value, res)
		}
	},
}

// TestLinearizability runs concurrent reads, writes and compare-and-sets on
// app specs through every node while leaders are killed and nodes are
// partitioned, and checks the history with porcupine.
func TestLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills and partitions a real cluster")
	}
	c := hubtest.New(t, 3, hubtest.Options{})
	admin := bootstrap(t, c)
	url0 := c.Nodes[0].URL()
	admin.must(t, "POST", url0+"/v1/tenants", apitypes.TenantRequest{Name: "lin"}, nil)
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		clock   = time.Now()
	)
	now := func() int64 { return int64(time.Since(clock)) }
	// Create every register at value 0 and record it as a write.
	for _, k := range keys {
		var app apitypes.App
		call := now()
		admin.must(t, "PUT", url0+"/v1/apps/"+k+"?tenant=lin", apitypes.AppSpec{Name: k, Image: "lin:1", Instances: intp(0)}, &app)
		history = append(history, porcupine.Operation{ClientId: 100, Input: linInput{Kind: opWrite, Key: k}, Call: call,
			Output: linOutput{Index: app.ModifyIndex}, Return: now()})
	}

	const (
		clients  = 6
		maxOps   = 4000
		opTimout = 3 * time.Second
	)
	runFor := 10 * time.Second
	if raceEnabled {
		runFor = 5 * time.Second
	}
	// hubtest stretches Raft's timeouts on a slow machine (at most
	// tenfold); the run and the nemesis's pauses stretch alike, so faults
	// keep their size relative to elections and the clients' pace keeps
	// the history's length.
	slow := min(deadline.Slowdown(), 10)
	stretch := func(d time.Duration) time.Duration { return time.Duration(float64(d) * slow) }
	runFor = stretch(runFor)
	// Spread the operations over the whole run, so the faults hit them.
	pace := runFor * clients / maxOps
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	var wg sync.WaitGroup
	var budget = make(chan struct{}, maxOps)
	for i := 0; i < maxOps; i++ {
		budget <- struct{}{}
	}
	close(budget)
	nextValue := 1
	var refused atomic.Int64
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			lastIndex := map[string]uint64{}
			r := newREST(t, admin.token)
			for range budget {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(pace)
				node := c.Nodes[(cl+rng.IntN(2))%len(c.Nodes)]
				key := keys[rng.IntN(len(keys))]
				in := linInput{Key: key}
				switch x := rng.IntN(10); {
				case x < 4:
					in.Kind = opRead
				case x < 7:
					in.Kind = opWrite
				default:
					in.Kind = opCAS
					in.Expect = lastIndex[key]
				}
				if in.Kind != opRead {
					mu.Lock()
					in.Value = nextValue
					nextValue++
					mu.Unlock()
				}
				opCtx, done := context.WithTimeout(context.Background(), opTimout)
				call := now()
				out := doLinOp(opCtx, r, node.URL(), in)
				ret := now()
				done()
				if out.Unknown {
					ret = 1 << 62 // may take effect at any time after the call
				}
				if out.NotSent {
					refused.Add(1)
				}
				if out.Unknown && (in.Kind == opRead || out.NotSent) {
					continue // a failed read, or a write that never left the client, says nothing
				}
				if !out.Unknown && in.Kind == opRead {
					lastIndex[key] = out.Index
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}(cl)
	}

	// The nemesis: kill and restart the leader, partition a node, heal.
	nemesisDone := make(chan struct{})
	go func() {
		defer close(nemesisDone)
		rng := rand.New(rand.NewPCG(42, 1))
		for i := 0; ctx.Err() == nil; i++ {
			pause(ctx, stretch(1500*time.Millisecond))
			switch i % 3 {
			case 0:
				if l := c.Leader(); l != nil {
					c.Kill(l.Index)
					pause(ctx, stretch(700*time.Millisecond))
					c.Restart(l.Index)
				}
			case 1:
				victim := rng.IntN(len(c.Nodes))
				if l := c.Leader(); l != nil && rng.IntN(2) == 0 {
					victim = l.Index
				}
				c.Partition(victim)
				pause(ctx, stretch(1200*time.Millisecond))
				c.Heal()
			case 2:
				c.Partition(rng.IntN(len(c.Nodes)))
				pause(ctx, stretch(300*time.Millisecond))
				c.Heal()
			}
		}
	}()
	wg.Wait()
	<-nemesisDone
	c.Heal()

	var ok, unknown int
	notSent := int(refused.Load())
	for _, op := range history {
		if op.Output.(linOutput).Unknown {
			unknown++
		} else {
			ok++
		}
	}
	t.Logf("history: %d operations completed, %d with unknown outcome, %d never submitted", ok, unknown, notSent)
	if ok < 100 {
		t.Fatalf("only %d operations completed: the cluster was unavailable too long", ok)
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel.ToModel(), history, 2*time.Minute)
	if res != porcupine.Ok {
		path := t.TempDir() + "/lin.html"
		_ = porcupine.VisualizePath(registerModel.ToModel(), info, path)
		t.Fatalf("history is not linearizable (%v); visualization in %s", res, path)
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// doLinOp performs one operation against node and classifies its outcome.
func doLinOp(ctx context.Context, r *rest, node string, in linInput) linOutput {
	url := node + "/v1/apps/" + in.Key + "?tenant=lin"
	switch in.Kind {
	case opRead:
		var app apitypes.App
		if _, _, err := r.call(ctx, "GET", url, nil, &app); err != nil || app.Instances == nil {
			return linOutput{Unknown: true}
		}
		return linOutput{Value: *app.Instances, Index: app.ModifyIndex}
	case opWrite, opCAS:
		if in.Kind == opCAS {
			url += fmt.Sprintf("&cas=%d", in.Expect)
		}
		code, hdr, err := r.call(ctx, "PUT", url, apitypes.AppSpec{Name: in.Key, Image: "lin:1", Instances: intp(in.Value)}, nil)
		switch {
		case err == nil:
			idx, perr := strconv.ParseUint(hdr.Get("X-Wharf-Index"), 10, 64)
			if perr != nil {
				return linOutput{Unknown: true}
			}
			return linOutput{OK: true, Value: in.Value, Index: idx}
		case in.Kind == opCAS && code == http.StatusConflict && strings.Contains(err.Error(), "409"):
			return linOutput{OK: false}
		case err != nil && code == 0 && errors.Is(err, syscall.ECONNREFUSED),
			code == http.StatusServiceUnavailable && hdr.Get("X-Wharf-Not-Submitted") == "true":
			return linOutput{Unknown: true, NotSent: true}
		default:
			// 503 (no leader), timeouts, lost connections: the write may
			// or may not have been committed.
			return linOutput{Unknown: true}
		}
	}
	panic("unknown op kind")
}

// TestRegisterModelRejectsStaleRead shows the checker can fail: a read that
// returns an older value after a newer write completed is refused.
func TestRegisterModelRejectsStaleRead(t *testing.T) {
	w := func(client int, v int, idx uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linInput{Kind: opWrite, Key: "k", Value: v}, Output: linOutput{Value: v, Index: idx}, Call: call, Return: ret}
	}
	r := func(client int, v int, idx uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linInput{Kind: opRead, Key: "k"}, Output: linOutput{Value: v, Index: idx}, Call: call, Return: ret}
	}
	good := []porcupine.Operation{w(0, 1, 10, 0, 1), w(0, 2, 11, 2, 3), r(1, 2, 11, 4, 5)}
	stale := []porcupine.Operation{w(0, 1, 10, 0, 1), w(0, 2, 11, 2, 3), r(1, 1, 10, 4, 5)}
	lostCAS := []porcupine.Operation{w(0, 1, 10, 0, 1),
		{ClientId: 1, Input: linInput{Kind: opCAS, Key: "k", Value: 5, Expect: 10}, Output: linOutput{OK: false}, Call: 2, Return: 3}}
	m := registerModel.ToModel()
	if !porcupine.CheckOperations(m, good) {
		t.Fatal("a linearizable history was refused")
	}
	if porcupine.CheckOperations(m, stale) {
		t.Fatal("a stale read was accepted")
	}
	if porcupine.CheckOperations(m, lostCAS) {
		t.Fatal("a CAS refused against the current index was accepted")
	}
}
