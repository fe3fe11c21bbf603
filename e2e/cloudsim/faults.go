package cloudsim

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// FaultKind is what a faulted call does. Each simulator answers a kind in
// its own cloud's words (code, HTTP status and message), so that a test
// can ask every cloud for "a throttle" and see each SDK meet its own.
type FaultKind int

// Fault kinds.
const (
	// FaultError answers the Fault's Code (and Status) verbatim.
	FaultError FaultKind = iota
	// FaultThrottle: the cloud's rate limit (EC2 RequestLimitExceeded,
	// ECS Throttling.User, Nova 429 with Retry-After, vCenter 429).
	FaultThrottle
	// FaultQuota: the account's quota or capacity (EC2
	// InstanceLimitExceeded, ECS QuotaExceed.ElasticQuota, Nova 403 "Quota
	// exceeded for instances", vCenter InsufficientResourcesFault).
	FaultQuota
	// FaultAuth: the credentials may not do this (EC2
	// UnauthorizedOperation, ECS Forbidden.RAM, Nova 401, vCenter
	// NoPermission).
	FaultAuth
	// FaultServer: the cloud failed (EC2 InternalError, ECS
	// InternalError, Nova 500, vCenter SystemError).
	FaultServer
	// FaultHang: no answer at all, until the client gives up or the
	// simulator closes.
	FaultHang
	// FaultLose: the call takes effect, then its connection closes
	// without an answer (the client sees a transport error).
	FaultLose
)

func (k FaultKind) String() string {
	switch k {
	case FaultError:
		return "error"
	case FaultThrottle:
		return "throttle"
	case FaultQuota:
		return "quota"
	case FaultAuth:
		return "auth"
	case FaultServer:
		return "server"
	case FaultHang:
		return "hang"
	case FaultLose:
		return "lose"
	}
	return "unknown"
}

// Fault makes calls of an action fail.
type Fault struct {
	// Action is the call it applies to ("" for every one): EC2 and ECS
	// actions (RunInstances), Nova calls (CreateServer), SOAP methods
	// (CloneVM_Task).
	Action string
	// Kind is what the call does; FaultError (the zero value) answers
	// Code and Status.
	Kind FaultKind
	// Code is the cloud's error code (EC2, ECS: InsufficientInstanceCapacity;
	// vSphere: the fault type, InsufficientResourcesFault); "" is the
	// kind's own.
	Code string
	// Message is the error message; "" is a message like the cloud's.
	Message string
	// Status is the HTTP status; 0 is the cloud's for the code or kind.
	Status int
	// RetryAfter, when positive, is sent as the Retry-After header in
	// seconds (where the cloud sends one: Nova).
	RetryAfter int
	// Times is how many calls fail; 0 is every call until Clear.
	Times int

	rate bool // the rate limit's (SetRate), which some clouds word apart
}

// Faults is the fault injection and the call counters every simulator
// shares: faults matched in the order they were added, a rate limit, a
// latency, and how many calls each action received. It is safe for
// concurrent use; the simulators consult it on every call.
type Faults struct {
	mu      sync.Mutex
	rules   []*Fault
	calls   map[string]int
	latency time.Duration
	bucket  *bucket
}

// NewFaults returns a Faults with none injected.
func NewFaults() *Faults { return &Faults{calls: map[string]int{}} }

// Inject adds a fault.
func (f *Faults) Inject(x Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &x)
}

// Fail makes the next n calls of action ("" for any) fail with kind, in
// the cloud's words; n <= 0 is every call until Clear.
func (f *Faults) Fail(action string, kind FaultKind, n int) {
	f.Inject(Fault{Action: action, Kind: kind, Times: max(n, 0)})
}

// Lose makes the next n calls of action ("" for any) take effect and
// then close the connection without an answer; n <= 0 adds nothing.
func (f *Faults) Lose(action string, n int) {
	if n > 0 {
		f.Fail(action, FaultLose, n)
	}
}

// Clear removes every fault, lost answer and the rate limit (not the
// latency).
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
	f.bucket = nil
}

// SetLatency delays every answer by d.
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// SetRate throttles calls beyond perSecond (with bursts of burst calls);
// perSecond <= 0 removes the limit.
func (f *Faults) SetRate(perSecond float64, burst int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if perSecond <= 0 {
		f.bucket = nil
		return
	}
	f.bucket = &bucket{rate: perSecond, burst: float64(max(burst, 1)), tokens: float64(max(burst, 1)), last: time.Now()}
}

// Calls returns how many calls each action received, faulted ones
// included.
func (f *Faults) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// ResetCalls sets every call count to zero.
func (f *Faults) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
}

// count counts one call of action.
func (f *Faults) count(action string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[action]++
}

// delay waits out the latency; false when ctx or stop ended first (the
// call gets no answer).
func (f *Faults) delay(ctx context.Context, stop <-chan struct{}) bool {
	f.mu.Lock()
	d := f.latency
	f.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-stop:
	}
	return false
}

// next is the fault that answers a call of action, counted against its
// Times (nil for none): the rate limit first, then the first matching
// fault that is not a lost answer. It returns a copy.
func (f *Faults) next(action string, now time.Time) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bucket != nil && !f.bucket.take(now) {
		return &Fault{Action: action, Kind: FaultThrottle, rate: true}
	}
	return f.takeLocked(action, func(k FaultKind) bool { return k != FaultLose })
}

// lost reports whether the answer to a successful call of action is to
// be dropped (counted against the fault's Times).
func (f *Faults) lost(action string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.takeLocked(action, func(k FaultKind) bool { return k == FaultLose }) != nil
}

func (f *Faults) takeLocked(action string, want func(FaultKind) bool) *Fault {
	for i, r := range f.rules {
		if r.Action != "" && r.Action != action || !want(r.Kind) {
			continue
		}
		c := *r
		if r.Times > 0 {
			if r.Times--; r.Times == 0 {
				f.rules = slices.Delete(f.rules, i, i+1)
			}
		}
		return &c
	}
	return nil
}

// hang holds a call without an answer until its client goes away or the
// simulator closes.
func hang(ctx context.Context, stop <-chan struct{}) {
	select {
	case <-ctx.Done():
	case <-stop:
	}
}

// dropAnswer closes the connection of a call that took effect, without
// an answer; false when the connection cannot be taken over (then the
// answer is written after all).
func dropAnswer(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// bucket is a token bucket for SetRate.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) take(now time.Time) bool {
	if now.After(b.last) { // a call timed before the limit was set earns nothing
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// bootHook runs a simulator's BootFunc for its machines and waits for
// every machine's life at Close: the part of booting every simulator
// shares.
type bootHook struct {
	fn   BootFunc
	log  *slog.Logger
	what string // "ec2 instance", "nova server", ... for the log
	wg   sync.WaitGroup
}

// live runs one machine's life in a goroutine that Close waits for.
func (b *bootHook) live(life func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		life()
	}()
}

// set reports whether there is a hook to call.
func (b *bootHook) set() bool { return b.fn != nil }

// boot calls the hook for inst (nothing when there is none) and returns
// its error's text ("" for none).
func (b *bootHook) boot(ctx context.Context, inst Instance) string {
	if b.fn == nil {
		return ""
	}
	if err := b.fn(ctx, inst); err != nil {
		b.log.Debug(b.what+" boot failed", "id", inst.ID, "error", err)
		return err.Error()
	}
	return ""
}

// wait waits until every life has ended.
func (b *bootHook) wait() { b.wg.Wait() }
