package cloudsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// ECS API facts the simulator answers with.
const (
	// ECSVersion is the ECS API version every ECS action takes.
	ECSVersion = "2014-05-26"
	// VPCVersion is the VPC API version DescribeVSwitches takes (the VPC
	// API owns vSwitches; the simulator serves it on the same endpoint).
	VPCVersion = "2016-04-28"
)

// ECS instance statuses, as ECS names them. A deleted instance has none:
// it vanishes from every answer.
const (
	ECSPending  = "Pending"
	ECSStarting = "Starting"
	ECSRunning  = "Running"
	ECSStopping = "Stopping"
	ECSStopped  = "Stopped"
)

// ECSInstanceType is the shape of an ECS instance type.
type ECSInstanceType struct {
	CPUCores int
	// MemoryGiB is a decimal number of GiB, as DescribeInstanceTypes
	// answers it ("0.5", "8", "3.75"): the simulator writes it verbatim.
	MemoryGiB string
}

// DefaultECSInstanceTypes are the types the simulator knows unless
// ECSOptions.InstanceTypes says otherwise (ECS's real sizes).
func DefaultECSInstanceTypes() map[string]ECSInstanceType {
	return map[string]ECSInstanceType{
		"ecs.t5-lc2m1.nano": {CPUCores: 1, MemoryGiB: "0.5"},
		"ecs.t6-c2m1.large": {CPUCores: 2, MemoryGiB: "1"},
		"ecs.c6.large":      {CPUCores: 2, MemoryGiB: "4"},
		"ecs.g6.large":      {CPUCores: 2, MemoryGiB: "8"},
		"ecs.g6.xlarge":     {CPUCores: 4, MemoryGiB: "16"},
		"ecs.r6.large":      {CPUCores: 2, MemoryGiB: "16"},
	}
}

// ECSVSwitch is a vSwitch of the simulated account.
type ECSVSwitch struct {
	ID, Name, VpcID, ZoneID, CIDR string
}

// ECSSecurityGroup is a security group of the simulated account.
type ECSSecurityGroup struct {
	ID, Name, VpcID string
}

// ECSImage is an image instances may run.
type ECSImage struct {
	ID, Name string
}

// DefaultECSCatalogue is what an account holds unless ECSOptions says
// otherwise: one vSwitch, one security group and two images (a public one,
// whose id is not m-..., and a custom one).
func DefaultECSCatalogue() ([]ECSVSwitch, []ECSSecurityGroup, []ECSImage) {
	return []ECSVSwitch{{ID: "vsw-bp1wharf0000000000001", Name: "wharf-agents", VpcID: "vpc-bp1wharf0000000000001", ZoneID: "cn-hangzhou-h", CIDR: "172.16.0.0/20"}},
		[]ECSSecurityGroup{{ID: "sg-bp1wharf0000000000001", Name: "wharf-agents", VpcID: "vpc-bp1wharf0000000000001"}},
		[]ECSImage{
			{ID: "ubuntu_22_04_x64_20G_alibase_20240130.vhd", Name: "Ubuntu 22.04 64 bit"},
			{ID: "m-bp1wharf0000000000001", Name: "wharf-agent-base"},
		}
}

// ECSOptions configures an ECS simulator. The zero value is usable.
type ECSOptions struct {
	// Keys maps AccessKey ids to AccessKey secrets. Empty: one random
	// pair is made (see ECS.Key).
	Keys map[string]string
	// Region is the one region the simulator serves; "" is cn-hangzhou.
	Region string
	// InstanceTypes are the types that run; nil is DefaultECSInstanceTypes.
	InstanceTypes map[string]ECSInstanceType
	// VSwitches, SecurityGroups and Images are the account's catalogue
	// (RunInstances takes these ids only); all three nil is
	// DefaultECSCatalogue.
	VSwitches      []ECSVSwitch
	SecurityGroups []ECSSecurityGroup
	Images         []ECSImage
	// MaxInstances is the quota of instances (every status counts until
	// an instance is deleted); 0 is no quota.
	MaxInstances int
	// BootDelay is how long a new instance takes to run: Pending for the
	// first half, Starting for the second; 0 is at once.
	BootDelay time.Duration
	// StopDelay is how long an instance stays Stopping (after its Boot
	// returned) before it is deleted, or Stopped; 0 is at once.
	StopDelay time.Duration
	// Boot, when set, runs for every instance that comes up Running. It
	// gets the instance as an Instance (see ECSInstance.Instance), so that
	// one BootFunc (package netboot's) boots EC2 and ECS machines alike.
	Boot BootFunc
	// Logger gets one debug line per call (never a secret or user
	// data); nil discards.
	Logger *slog.Logger
}

// ECSInstance is a snapshot of one simulated ECS instance.
type ECSInstance struct {
	ID              string
	Name            string // InstanceName
	ClientToken     string
	ImageID         string
	InstanceType    string
	VSwitchID       string
	VpcID           string
	ZoneID          string
	SecurityGroupID string
	Tags            map[string]string
	UserData        []byte // base64-decoded
	Status          string
	PrivateIP       string
	CreationTime    time.Time
	Booted          bool   // Boot was called
	BootError       string // what Boot returned, "" for nil
}

// Instance is the instance as a BootFunc sees it: the fields both clouds
// have, the vSwitch as SubnetID and ECS's status as State.
func (in ECSInstance) Instance() Instance {
	var groups []string
	if in.SecurityGroupID != "" {
		groups = []string{in.SecurityGroupID}
	}
	return Instance{
		ID: in.ID, ClientToken: in.ClientToken, ImageID: in.ImageID, InstanceType: in.InstanceType,
		SubnetID: in.VSwitchID, SecurityGroups: groups, Tags: maps.Clone(in.Tags), UserData: slices.Clone(in.UserData),
		State: in.Status, PrivateIP: in.PrivateIP, LaunchTime: in.CreationTime, Booted: in.Booted, BootError: in.BootError,
	}
}

// ECS is a running ECS simulator.
type ECS struct {
	srv     *httptest.Server
	log     *slog.Logger
	region  string
	keys    map[string]string
	types   map[string]ECSInstanceType
	vsws    []ECSVSwitch
	groups  []ECSSecurityGroup
	images  []ECSImage
	boot    BootFunc
	stop    chan struct{}  // closed by Close
	wg      sync.WaitGroup // instance lives
	closeMu sync.Once

	mu           sync.Mutex
	closed       bool
	instances    map[string]*ecsInstance
	order        []*ecsInstance // creation order, for paging
	tokens       map[string]*ecsRun
	nonces       ecsNonces
	seq          int64
	calls        map[string]int
	faults       []*Fault
	lose         map[string]int
	latency      time.Duration
	bootDelay    time.Duration
	stopDelay    time.Duration
	maxInstances int
	bucket       *bucket
}

// ecsRun is what a ClientToken answers: the instances of its first call.
type ecsRun struct {
	fingerprint string
	ids         []string
}

type ecsInstance struct {
	ECSInstance
	seq      int64
	deleting bool               // Stopping on the way to deleted (not to Stopped)
	cancel   context.CancelFunc // ends the instance's life (Boot's ctx)
}

func (in *ecsInstance) snapshot() ECSInstance {
	s := in.ECSInstance
	s.Tags = maps.Clone(in.Tags)
	s.UserData = slices.Clone(in.UserData)
	return s
}

// NewECS starts a simulator on 127.0.0.1.
func NewECS(opts ECSOptions) (*ECS, error) {
	s := &ECS{
		log:          opts.Logger,
		region:       opts.Region,
		keys:         maps.Clone(opts.Keys),
		types:        maps.Clone(opts.InstanceTypes),
		vsws:         slices.Clone(opts.VSwitches),
		groups:       slices.Clone(opts.SecurityGroups),
		images:       slices.Clone(opts.Images),
		boot:         opts.Boot,
		stop:         make(chan struct{}),
		instances:    map[string]*ecsInstance{},
		tokens:       map[string]*ecsRun{},
		calls:        map[string]int{},
		lose:         map[string]int{},
		bootDelay:    opts.BootDelay,
		stopDelay:    opts.StopDelay,
		maxInstances: opts.MaxInstances,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.region == "" {
		s.region = "cn-hangzhou"
	}
	if s.types == nil {
		s.types = DefaultECSInstanceTypes()
	}
	if s.vsws == nil && s.groups == nil && s.images == nil {
		s.vsws, s.groups, s.images = DefaultECSCatalogue()
	}
	if opts.BootDelay < 0 || opts.StopDelay < 0 || opts.MaxInstances < 0 {
		return nil, errors.New("cloudsim: negative delay or quota")
	}
	for name, t := range s.types {
		if _, err := gibToMiB(t.MemoryGiB); err != nil || t.CPUCores <= 0 || name == "" {
			return nil, fmt.Errorf("cloudsim: instance type %q: want a positive CPUCores and a decimal MemoryGiB", name)
		}
	}
	for id, secret := range s.keys {
		if id == "" || secret == "" || !printableASCII(id) {
			return nil, errors.New("cloudsim: an AccessKey id or secret is empty or not printable ASCII")
		}
	}
	if len(s.keys) == 0 {
		s.keys = map[string]string{"LTAI" + randomHex(10): randomHex(15)}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s, nil
}

// gibToMiB converts a decimal number of GiB to whole MiB (rounded down).
func gibToMiB(gib string) (int64, error) {
	r, ok := new(big.Rat).SetString(gib)
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("%q is not a non-negative decimal", gib)
	}
	r.Mul(r, big.NewRat(1024, 1))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsInt64() {
		return 0, fmt.Errorf("%q is too large", gib)
	}
	return q.Int64(), nil
}

// URL is the endpoint, http://127.0.0.1:PORT.
func (s *ECS) URL() string { return s.srv.URL }

// Region is the region the simulator serves.
func (s *ECS) Region() string { return s.region }

// Key returns an AccessKey pair the simulator accepts (the first by id).
func (s *ECS) Key() (id, secret string) {
	ids := slices.Sorted(maps.Keys(s.keys))
	return ids[0], s.keys[ids[0]]
}

// Close stops the server, ends every instance's Boot context and waits
// until every Boot has returned.
func (s *ECS) Close() {
	s.closeMu.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.stop)
		for _, in := range s.order {
			in.cancel()
		}
		s.mu.Unlock()
		s.srv.Close()
		s.wg.Wait()
	})
}

// Inject adds a fault with an ECS error code (Throttling,
// QuotaExceed.ElasticQuota, OperationDenied.NoStock, ...); faults are
// matched in the order they were added.
func (s *ECS) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Throttle answers the next n calls of action ("" for any) with
// Throttling.User.
func (s *ECS) Throttle(action string, n int) {
	s.Inject(Fault{Action: action, Code: "Throttling.User", Times: max(n, 1)})
}

// ClearFaults removes every fault, the rate limit and the lost answers.
func (s *ECS) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.bucket = nil
	clear(s.lose)
}

// SetRate answers Throttling to calls beyond perSecond (with bursts of
// burst calls); perSecond <= 0 removes the limit.
func (s *ECS) SetRate(perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		s.bucket = nil
		return
	}
	s.bucket = &bucket{rate: perSecond, burst: float64(max(burst, 1)), tokens: float64(max(burst, 1)), last: time.Now()}
}

// SetLatency delays every answer by d.
func (s *ECS) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// LoseAnswers makes the next n successful calls of action ("" for any)
// take effect and then close the connection without an answer.
func (s *ECS) LoseAnswers(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[action] += n
}

// SetBootDelay changes the boot delay of instances created from now on.
func (s *ECS) SetBootDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootDelay = d
}

// SetStopDelay changes how long stops and deletions from now on take.
func (s *ECS) SetStopDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopDelay = d
}

// SetMaxInstances changes the quota of instances (0: none).
func (s *ECS) SetMaxInstances(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxInstances = n
}

// Stop stops a Running instance as its owner would in the console:
// Stopping (its Boot context ends), then Stopped after the stop delay.
func (s *ECS) Stop(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[id]
	if in == nil || in.Status != ECSRunning {
		return fmt.Errorf("cloudsim: no Running instance %s", id)
	}
	in.Status = ECSStopping
	in.cancel()
	return nil
}

// Calls returns how many authenticated calls each action received,
// faulted ones included.
func (s *ECS) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// ResetCalls sets every call count to zero.
func (s *ECS) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// Instances returns a snapshot of every instance not yet deleted, in
// creation order.
func (s *ECS) Instances() []ECSInstance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ECSInstance, 0, len(s.order))
	for _, in := range s.order {
		out = append(out, in.snapshot())
	}
	return out
}

// Instance returns a snapshot of one instance; false once it is deleted.
func (s *ECS) Instance(id string) (ECSInstance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		return ECSInstance{}, false
	}
	return in.snapshot(), true
}

// serveHTTP is the whole request path: parameters, signature, action,
// latency, rate, faults, the action, and the answer (or a lost one).
func (s *ECS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > maxBody {
		s.writeError(w, reqID, ecsErr("InvalidParameter.TooLarge", "The request body is too large."))
		return
	}
	params, eerr := ecsParseParams(r, body)
	if eerr != nil {
		s.writeError(w, reqID, eerr)
		return
	}
	if eerr := s.authenticate(r.Method, params, time.Now()); eerr != nil {
		s.log.Debug("ecs call refused", "code", eerr.Code)
		s.writeError(w, reqID, eerr)
		return
	}
	action := params["Action"]
	spec, eerr := ecsLookup(params)
	if eerr != nil {
		s.writeError(w, reqID, eerr)
		return
	}
	s.mu.Lock()
	s.calls[action]++
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.stop:
			t.Stop()
			return
		}
	}
	resp, eerr := s.call(action, spec, params)
	s.log.Debug("ecs call", "action", action, "error", ecsCode(eerr))
	if eerr != nil {
		s.writeError(w, reqID, eerr)
		return
	}
	if s.takeLost(action) {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	ecsWriteJSON(w, reqID, resp)
}

func ecsCode(e *ecsError) string {
	if e == nil {
		return ""
	}
	return e.Code
}

// call checks the rate and faults, then runs the action.
func (s *ECS) call(action string, spec ecsSpec, p ecsParams) (ecsResponse, *ecsError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.bucket != nil && !s.bucket.take(now) {
		return nil, ecsErr("Throttling", "")
	}
	if eerr := s.faultLocked(action); eerr != nil {
		return nil, eerr
	}
	if spec.regional {
		switch region := p["RegionId"]; {
		case region == "":
			return nil, ecsMissing("RegionId")
		case region != s.region:
			return nil, ecsErr("InvalidRegionId.NotFound", "The specified RegionId %q does not exist.", truncate(region, 64))
		}
	}
	return spec.fn(s, p)
}

func (s *ECS) faultLocked(action string) *ecsError {
	for i, f := range s.faults {
		if f.Action != "" && f.Action != action {
			continue
		}
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		e := ecsErr(f.Code, "%s", f.Message)
		if f.Status != 0 {
			e.Status = f.Status
		}
		return e
	}
	return nil
}

func (s *ECS) takeLost(action string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range []string{action, ""} {
		if s.lose[a] > 0 {
			s.lose[a]--
			return true
		}
	}
	return false
}

// createLocked starts an instance's life: Pending, Starting, then Running
// with Boot called, until stopped, deleted or closed.
func (s *ECS) createLocked(in *ecsInstance) {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	if s.closed {
		cancel() // a call that raced with Close: the instance never boots
	}
	s.instances[in.ID] = in
	s.order = append(s.order, in)
	delay := s.bootDelay
	s.wg.Add(1)
	go s.live(ctx, in, delay)
}

// removeLocked deletes an instance: it leaves every answer.
func (s *ECS) removeLocked(in *ecsInstance) {
	if s.instances[in.ID] != in {
		return
	}
	delete(s.instances, in.ID)
	s.order = slices.DeleteFunc(s.order, func(x *ecsInstance) bool { return x == in })
}

// ecsSleep waits d, or until ctx ends (false).
func ecsSleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// wait waits d, or until the simulator closes (false).
func (s *ECS) wait(d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-s.stop:
		return false
	default:
	}
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

func (s *ECS) live(ctx context.Context, in *ecsInstance, bootDelay time.Duration) {
	defer s.wg.Done()
	if ecsSleep(ctx, bootDelay/2) {
		s.mu.Lock()
		if in.Status == ECSPending {
			in.Status = ECSStarting
		}
		s.mu.Unlock()
		if ecsSleep(ctx, bootDelay-bootDelay/2) {
			s.mu.Lock()
			booting := in.Status == ECSStarting
			if booting {
				in.Status = ECSRunning
				in.Booted = s.boot != nil
			}
			view := in.snapshot().Instance()
			s.mu.Unlock()
			if booting && s.boot != nil {
				if err := s.boot(ctx, view); err != nil {
					s.log.Debug("ecs instance boot failed", "instance", in.ID, "error", err)
					s.mu.Lock()
					in.BootError = err.Error()
					s.mu.Unlock()
				}
			}
			<-ctx.Done()
		}
	}
	// Stopped or deleted (Stopping now), or the simulator closing.
	s.mu.Lock()
	delay := s.stopDelay
	s.mu.Unlock()
	if !s.wait(delay) {
		return // closing: nobody looks any more
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.deleting {
		s.removeLocked(in)
	} else if in.Status == ECSStopping {
		in.Status = ECSStopped
	}
}
