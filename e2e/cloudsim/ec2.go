package cloudsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"
)

// EC2 API facts the simulator answers with.
const (
	EC2Version   = "2016-11-15"
	EC2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
	ownerID      = "123456789012"
	maxBody      = 1 << 20
)

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

var stateCodes = map[string]int{StatePending: 0, StateRunning: 16, StateShuttingDown: 32, StateTerminated: 48}

// InstanceType is the shape of an instance type.
type InstanceType struct {
	VCPUs     int
	MemoryMiB int64
}

// DefaultInstanceTypes are the types the simulator knows unless
// EC2Options.InstanceTypes says otherwise (EC2's real sizes).
func DefaultInstanceTypes() map[string]InstanceType {
	return map[string]InstanceType{
		"t3.micro":  {VCPUs: 2, MemoryMiB: 1024},
		"t3.small":  {VCPUs: 2, MemoryMiB: 2048},
		"t3.medium": {VCPUs: 2, MemoryMiB: 4096},
		"t3.large":  {VCPUs: 2, MemoryMiB: 8192},
		"m5.large":  {VCPUs: 2, MemoryMiB: 8192},
		"m5.xlarge": {VCPUs: 4, MemoryMiB: 16384},
		"c5.large":  {VCPUs: 2, MemoryMiB: 4096},
	}
}

// BootFunc runs when an instance starts booting (it is running from then
// on). ctx ends when the instance is terminated or the simulator closed;
// a BootFunc may return at once or keep running until then (Close waits
// for it). Its error is kept on the instance (Instance.BootError) and
// changes nothing else: a machine whose cloud-init failed still runs.
type BootFunc func(ctx context.Context, inst Instance) error

// EC2Options configures an EC2 simulator. The zero value is usable.
type EC2Options struct {
	// Keys maps access key ids to secret access keys. Empty: one random
	// pair is made (see EC2.Key).
	Keys map[string]string
	// Region is the region requests must be signed for; "" is us-east-1.
	Region string
	// InstanceTypes are the types that run; nil is DefaultInstanceTypes.
	InstanceTypes map[string]InstanceType
	// Images are the AMI ids instances may run; nil runs any well-formed
	// id (ami-...), as most tests need no catalogue.
	Images []string
	// MaxInstances is the quota of live (not terminated) instances;
	// 0 is no quota.
	MaxInstances int
	// BootDelay is how long an instance stays pending; 0 is at once.
	BootDelay time.Duration
	// TerminateDelay is how long an instance stays shutting-down (after
	// its Boot returned); 0 is at once.
	TerminateDelay time.Duration
	// TerminatedTTL is how long a terminated instance stays listed;
	// 0 is one hour, like EC2.
	TerminatedTTL time.Duration
	// Boot, when set, runs for every instance that boots.
	Boot BootFunc
	// Logger gets one debug line per call (never a secret or user
	// data); nil discards.
	Logger *slog.Logger
}

// Instance is a snapshot of one simulated instance.
type Instance struct {
	ID             string
	ReservationID  string
	ClientToken    string
	ImageID        string
	InstanceType   string
	SubnetID       string
	SecurityGroups []string // as asked: ids (sg-...) and names
	KeyName        string
	Tags           map[string]string
	UserData       []byte // base64-decoded
	State          string
	PrivateIP      string
	LaunchTime     time.Time
	Booted         bool   // Boot was called
	BootError      string // what Boot returned, "" for nil
	// InstanceID and Hostname are cloud-init's instance-id and
	// local-hostname where the cloud gives them apart from the id
	// (vSphere's guestinfo.metadata); "" elsewhere.
	InstanceID string
	Hostname   string
}

// EC2 is a running EC2 simulator.
type EC2 struct {
	srv     *httptest.Server
	log     *slog.Logger
	region  string
	keys    map[string]string
	types   map[string]InstanceType
	images  map[string]bool // nil: any
	ttl     time.Duration
	hook    *bootHook
	faults  *Faults
	stop    chan struct{} // closed by Close
	closeMu sync.Once

	mu             sync.Mutex
	closed         bool
	instances      map[string]*instance
	order          []*instance // launch order, for pagination
	tokens         map[string]*reservation
	seq            int64
	bootDelay      time.Duration
	terminateDelay time.Duration
	maxInstances   int
}

type reservation struct {
	id          string
	fingerprint string
	instances   []*instance
	groups      []string
}

type instance struct {
	Instance
	seq          int64
	terminatedAt time.Time
	cancel       context.CancelFunc // ends the instance's life (Boot's ctx)
}

func (in *instance) snapshot() Instance {
	s := in.Instance
	s.Tags = maps.Clone(in.Tags)
	s.UserData = slices.Clone(in.UserData)
	s.SecurityGroups = slices.Clone(in.SecurityGroups)
	return s
}

// NewEC2 starts a simulator on 127.0.0.1.
func NewEC2(opts EC2Options) (*EC2, error) {
	s := &EC2{
		log:            opts.Logger,
		region:         opts.Region,
		keys:           maps.Clone(opts.Keys),
		types:          maps.Clone(opts.InstanceTypes),
		ttl:            opts.TerminatedTTL,
		faults:         NewFaults(),
		stop:           make(chan struct{}),
		instances:      map[string]*instance{},
		tokens:         map[string]*reservation{},
		bootDelay:      opts.BootDelay,
		terminateDelay: opts.TerminateDelay,
		maxInstances:   opts.MaxInstances,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.hook = &bootHook{fn: opts.Boot, log: s.log, what: "ec2 instance"}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.types == nil {
		s.types = DefaultInstanceTypes()
	}
	if opts.Images != nil {
		s.images = map[string]bool{}
		for _, id := range opts.Images {
			s.images[id] = true
		}
	}
	if s.ttl == 0 {
		s.ttl = time.Hour
	}
	if opts.BootDelay < 0 || opts.TerminateDelay < 0 || opts.TerminatedTTL < 0 || opts.MaxInstances < 0 {
		return nil, errors.New("cloudsim: negative delay or quota")
	}
	for id, secret := range s.keys {
		if id == "" || secret == "" || !printableASCII(id) {
			return nil, errors.New("cloudsim: an access key id or secret is empty or not printable ASCII")
		}
	}
	if len(s.keys) == 0 {
		s.keys = map[string]string{"AKIA" + randomHex(8): randomHex(20)}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s, nil
}

// URL is the endpoint, http://127.0.0.1:PORT.
func (s *EC2) URL() string { return s.srv.URL }

// Region is the region the simulator signs for.
func (s *EC2) Region() string { return s.region }

// Key returns an access key pair the simulator accepts (the first by id).
func (s *EC2) Key() (id, secret string) {
	ids := slices.Sorted(maps.Keys(s.keys))
	return ids[0], s.keys[ids[0]]
}

// Close stops the server, ends every instance's Boot context and waits
// until every Boot has returned.
func (s *EC2) Close() {
	s.closeMu.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.stop)
		for _, in := range s.order {
			in.cancel()
		}
		s.mu.Unlock()
		s.srv.Close()
		s.hook.wait()
	})
}

// Faults is the simulator's fault injection and call counters: Fail
// with a kind answers in EC2's words (RequestLimitExceeded,
// InstanceLimitExceeded, UnauthorizedOperation, InternalError).
func (s *EC2) Faults() *Faults { return s.faults }

// Inject adds a fault with an EC2 error code; faults are matched in the
// order they were added.
func (s *EC2) Inject(f Fault) { s.faults.Inject(f) }

// Throttle answers the next n calls of action ("" for any) with
// RequestLimitExceeded.
func (s *EC2) Throttle(action string, n int) { s.faults.Fail(action, FaultThrottle, max(n, 1)) }

// ClearFaults removes every fault, the rate limit and the lost answers.
func (s *EC2) ClearFaults() { s.faults.Clear() }

// SetRate answers RequestLimitExceeded to calls beyond perSecond (with
// bursts of burst calls); perSecond <= 0 removes the limit.
func (s *EC2) SetRate(perSecond float64, burst int) { s.faults.SetRate(perSecond, burst) }

// SetLatency delays every answer by d.
func (s *EC2) SetLatency(d time.Duration) { s.faults.SetLatency(d) }

// LoseAnswers makes the next n successful calls of action ("" for any)
// take effect and then close the connection without an answer.
func (s *EC2) LoseAnswers(action string, n int) { s.faults.Lose(action, n) }

// SetBootDelay changes the boot delay of instances launched from now on.
func (s *EC2) SetBootDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootDelay = d
}

// SetTerminateDelay changes how long terminations from now on take.
func (s *EC2) SetTerminateDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminateDelay = d
}

// SetMaxInstances changes the quota of live instances (0: none).
func (s *EC2) SetMaxInstances(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxInstances = n
}

// Calls returns how many authenticated calls each action received,
// faulted ones included.
func (s *EC2) Calls() map[string]int { return s.faults.Calls() }

// ResetCalls sets every call count to zero.
func (s *EC2) ResetCalls() { s.faults.ResetCalls() }

// Instances returns a snapshot of every instance still listed, in launch
// order.
func (s *EC2) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(time.Now())
	out := make([]Instance, 0, len(s.order))
	for _, in := range s.order {
		out = append(out, in.snapshot())
	}
	return out
}

// Instance returns a snapshot of one instance.
func (s *EC2) Instance(id string) (Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		return Instance{}, false
	}
	return in.snapshot(), true
}

// apiError is an EC2 error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
	hang    bool // no answer at all (an injected FaultHang)
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// errorStatus is EC2's HTTP status per error code (400 for the others).
var errorStatus = map[string]int{
	"AuthFailure":                  http.StatusUnauthorized,
	"SignatureDoesNotMatch":        http.StatusForbidden,
	"UnauthorizedOperation":        http.StatusForbidden,
	"InvalidClientTokenId":         http.StatusForbidden,
	"OptInRequired":                http.StatusForbidden,
	"RequestLimitExceeded":         http.StatusServiceUnavailable,
	"Unavailable":                  http.StatusServiceUnavailable,
	"ServiceUnavailable":           http.StatusServiceUnavailable,
	"InternalError":                http.StatusInternalServerError,
	"InsufficientInstanceCapacity": http.StatusInternalServerError,
	"DryRunOperation":              http.StatusPreconditionFailed,
}

func newError(code, format string, args ...any) *apiError {
	status, ok := errorStatus[code]
	if !ok {
		status = http.StatusBadRequest
	}
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

var defaultMessages = map[string]string{
	"RequestLimitExceeded":         "Request limit exceeded.",
	"InsufficientInstanceCapacity": "We currently do not have sufficient capacity in the Availability Zone you requested.",
	"InstanceLimitExceeded":        "Your quota allows for 0 more running instance(s).",
	"VcpuLimitExceeded":            "You have requested more vCPU capacity than your current vCPU limit allows.",
	"InternalError":                "An internal error has occurred.",
	"Unavailable":                  "The service is unavailable. Please try again shortly.",
	"UnauthorizedOperation":        "You are not authorized to perform this operation.",
	"AuthFailure":                  "AWS was not able to validate the provided access credentials",
}

// serveHTTP is the whole request path: body, form, signature, action,
// latency, rate, faults, the action, and the answer (or a lost one).
func (s *EC2) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > maxBody {
		writeError(w, reqID, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge", Message: "Request body too large."})
		return
	}
	if aerr := verifySignature(r, body, s.keys, s.region, time.Now()); aerr != nil {
		s.log.Debug("ec2 call refused", "code", aerr.Code)
		writeError(w, reqID, aerr)
		return
	}
	form, aerr := parseForm(r, body)
	if aerr != nil {
		writeError(w, reqID, aerr)
		return
	}
	action := form.Get("Action")
	handler, known := actions[action]
	if known {
		s.faults.count(action)
	}
	if !s.faults.delay(r.Context(), s.stop) {
		return
	}
	resp, aerr := s.call(action, handler, form)
	s.log.Debug("ec2 call", "action", action, "error", errCode(aerr))
	if aerr != nil {
		if aerr.hang {
			hang(r.Context(), s.stop)
			return
		}
		writeError(w, reqID, aerr)
		return
	}
	if s.faults.lost(action) && dropAnswer(w) {
		return
	}
	writeXML(w, reqID, resp)
}

func errCode(e *apiError) string {
	if e == nil {
		return ""
	}
	return e.Code
}

// call checks Version, rate and faults, then runs the action.
func (s *EC2) call(action string, handler actionFunc, form url.Values) (response, *apiError) {
	if action == "" {
		return nil, newError("MissingAction", "The request must contain the parameter Action.")
	}
	if handler == nil {
		return nil, newError("InvalidAction", "The action %s is not valid for this web service.", truncate(action, 64))
	}
	if v := form.Get("Version"); v == "" {
		return nil, newError("MissingParameter", "The request must contain the parameter Version.")
	} else if v != EC2Version {
		return nil, newError("InvalidParameterValue", "Unsupported Version %s; this endpoint speaks %s.", truncate(v, 32), EC2Version)
	}
	now := time.Now()
	if f := s.faults.next(action, now); f != nil {
		return nil, ec2Fault(f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	return handler(s, form, now)
}

// ec2Codes are EC2's words for the kinds of faults.
var ec2Codes = map[FaultKind]string{
	FaultThrottle: "RequestLimitExceeded",
	FaultQuota:    "InstanceLimitExceeded",
	FaultAuth:     "UnauthorizedOperation",
	FaultServer:   "InternalError",
}

// ec2Fault is an injected fault as EC2 answers it.
func ec2Fault(f *Fault) *apiError {
	if f.Kind == FaultHang {
		return &apiError{hang: true}
	}
	code := f.Code
	if code == "" {
		code = ec2Codes[f.Kind]
	}
	if code == "" {
		code = "InternalError"
	}
	e := newError(code, "%s", f.Message)
	if e.Message == "" {
		e.Message = defaultMessages[code]
	}
	if e.Message == "" {
		e.Message = "Injected fault " + code + "."
	}
	if f.Status != 0 {
		e.Status = f.Status
	}
	return e
}

// pruneLocked forgets terminated instances older than the TTL (their
// reservation still answers a repeated ClientToken).
func (s *EC2) pruneLocked(now time.Time) {
	kept := s.order[:0]
	for _, in := range s.order {
		if in.State == StateTerminated && now.Sub(in.terminatedAt) > s.ttl {
			delete(s.instances, in.ID)
			continue
		}
		kept = append(kept, in)
	}
	clear(s.order[len(kept):])
	s.order = kept
}

// launchLocked starts an instance's life: pending for the boot delay,
// then running with Boot called, until terminated or closed.
func (s *EC2) launchLocked(in *instance) {
	// The instance's context is Boot's: it ends at terminate or Close.
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	if s.closed {
		cancel() // a call that raced with Close: the instance never boots
	}
	s.instances[in.ID] = in
	s.order = append(s.order, in)
	delay := s.bootDelay
	s.hook.live(func() { s.live(ctx, in, delay) })
}

func (s *EC2) live(ctx context.Context, in *instance, bootDelay time.Duration) {
	t := time.NewTimer(bootDelay)
	select {
	case <-t.C:
		s.mu.Lock()
		booting := in.State == StatePending
		if booting {
			in.State = StateRunning
			in.Booted = s.hook.set()
		}
		snap := in.snapshot()
		s.mu.Unlock()
		if booting {
			if msg := s.hook.boot(ctx, snap); msg != "" {
				s.mu.Lock()
				in.BootError = msg
				s.mu.Unlock()
			}
		}
		<-ctx.Done()
	case <-ctx.Done():
		t.Stop()
	}
	s.mu.Lock()
	delay := s.terminateDelay
	s.mu.Unlock()
	select {
	case <-s.stop:
		return // closing: nobody looks any more
	default:
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		}
	}
	s.mu.Lock()
	in.State = StateTerminated
	in.terminatedAt = time.Now()
	s.mu.Unlock()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("cloudsim: crypto/rand: " + err.Error()) // never fails on Linux
	}
	return hex.EncodeToString(b)
}

func newRequestID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
