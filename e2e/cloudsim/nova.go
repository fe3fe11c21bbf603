package cloudsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// Nova server statuses the simulator reports.
const (
	NovaBuild   = "BUILD"
	NovaActive  = "ACTIVE"
	NovaError   = "ERROR"
	NovaDeleted = "DELETED"
)

// NovaFlavor is a flavor the simulator offers.
type NovaFlavor struct {
	ID     string
	Name   string
	VCPUs  int
	RAMMiB int
	DiskGB int
}

// DefaultNovaFlavors are the flavors unless OpenStackOptions.Flavors says
// otherwise (devstack's m1 sizes).
func DefaultNovaFlavors() []NovaFlavor {
	return []NovaFlavor{
		{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMiB: 512, DiskGB: 1},
		{ID: "2", Name: "m1.small", VCPUs: 1, RAMMiB: 2048, DiskGB: 20},
		{ID: "3", Name: "m1.medium", VCPUs: 2, RAMMiB: 4096, DiskGB: 40},
		{ID: "4", Name: "m1.large", VCPUs: 4, RAMMiB: 8192, DiskGB: 80},
		{ID: "5", Name: "m1.xlarge", VCPUs: 8, RAMMiB: 16384, DiskGB: 160},
	}
}

// OpenStackResource is a Glance image or a Neutron network: an id and a
// name, which is all that servers are created from.
type OpenStackResource struct {
	ID   string
	Name string
}

// OpenStackUser is a Keystone user with a role on one project; the
// user and the project live in the same domain (matched by name or id).
type OpenStackUser struct {
	Name     string
	Password string
	Project  string
	Domain   string
}

// OpenStackOptions configures an OpenStack simulator. The zero value is
// usable.
type OpenStackOptions struct {
	// Users are the accounts Keystone knows; empty is one random user
	// (see OpenStack.User).
	Users []OpenStackUser
	// Region is the catalog's region; "" is RegionOne.
	Region string
	// Flavors, Images and Networks are what servers are made of; nil
	// flavors are DefaultNovaFlavors, nil images one "ubuntu-24.04" and
	// one "debian-12", nil networks one "private".
	Flavors  []NovaFlavor
	Images   []OpenStackResource
	Networks []OpenStackResource
	// MaxInstances is the project's quota of servers; 0 is none.
	MaxInstances int
	// BootDelay is how long a server stays BUILD; 0 is at once.
	BootDelay time.Duration
	// DeleteDelay is how long a deleted server stays listed as DELETED
	// (after its Boot returned); 0 is at once.
	DeleteDelay time.Duration
	// TokenTTL is how long a token lives; 0 is one hour.
	TokenTTL time.Duration
	// Boot, when set, runs for every server that becomes ACTIVE; the
	// Instance it gets has the server's id, flavor id as InstanceType,
	// image id, first network id as SubnetID, metadata as Tags and the
	// decoded user data.
	Boot BootFunc
	// Logger gets one debug line per call (never a secret or user
	// data); nil discards.
	Logger *slog.Logger
}

// NovaServer is a snapshot of one simulated server.
type NovaServer struct {
	ID        string
	Name      string
	FlavorID  string
	ImageID   string
	Networks  []string // network ids
	Metadata  map[string]string
	UserData  []byte // base64-decoded
	Status    string
	Fault     string // the fault message of an ERROR server
	IP        string
	ProjectID string
	Created   time.Time
	Booted    bool   // Boot was called
	BootError string // what Boot returned, "" for nil
}

// NovaFault makes calls fail with an HTTP status and a message in
// Nova's (or, for Authenticate, Keystone's) error format.
type NovaFault struct {
	// Call is the call it applies to ("" for every call): Authenticate,
	// CreateServer, ListServers, GetServer, DeleteServer, ListFlavors,
	// GetFlavor, ListImages, GetImage, ListNetworks, GetNetwork.
	Call string
	// Status is the HTTP status; 0 is 500.
	Status int
	// Message is the error message; "" is a message like Nova's.
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header
	// (seconds), as Nova does with 413 and 429.
	RetryAfter int
	// Times is how many calls fail; 0 is every call until ClearFaults.
	Times int
}

// OpenStack is a running OpenStack simulator: Keystone v3 at /v3, Nova
// (compute v2.1) at /compute/v2.1, Glance's image lookups at /image and
// Neutron's network lookups at /network, on one 127.0.0.1 port.
//
// Keystone: POST /v3/auth/tokens takes the password method with a
// project scope (by name or id, with its domain); a wrong user, password
// or project is 401. The token comes back in X-Subject-Token with a
// catalog that points at this server's compute, image and network
// endpoints in the configured region. Every other call needs a live
// token in X-Auth-Token (unknown or expired: 401), as Nova's keystone
// middleware checks it.
//
// Nova: POST /servers (name, flavorRef, imageRef, networks, metadata,
// base64 user_data: all kept), GET /servers/detail (name as a regular
// expression, status, paging by limit and marker with servers_links),
// GET and DELETE /servers/{id}, GET /flavors/detail and /flavors/{id}.
// Nova has no client token: two creates with one name are two servers
// (clients look up before they retry). A server is BUILD for the boot
// delay, then ACTIVE (Boot is called), or ERROR with a fault after
// FailBoots; DELETE makes it DELETED for the delete delay, then it is
// gone (404). The quota of instances answers 403 "Quota exceeded for
// instances".
//
// Glance and Neutron: GET /image/v2/images[?name=] and /{id}, GET
// /network/v2.0/networks[?name=] and /{id}, and their version documents.
//
// Faults, as for EC2: Inject (a status for the next N calls of a call),
// Throttle (429 with Retry-After), SetLatency, LoseAnswers (the call
// takes effect, the connection closes without an answer), SetBootDelay,
// SetMaxInstances, FailBoots, ExpireTokens. Calls counts calls by name,
// Servers is a snapshot.
type OpenStack struct {
	srv       *httptest.Server
	log       *slog.Logger
	region    string
	users     []OpenStackUser
	flavors   []NovaFlavor
	images    []OpenStackResource
	networks  []OpenStackResource
	tokenTTL  time.Duration
	boot      BootFunc
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu          sync.Mutex
	closed      bool
	tokens      map[string]novaToken
	servers     map[string]*novaServer
	order       []*novaServer // creation order, for paging
	calls       map[string]int
	faults      []*NovaFault
	lose        map[string]int
	latency     time.Duration
	bootDelay   time.Duration
	deleteDelay time.Duration
	maxServers  int
	failBoots   int
	failMessage string
	ipSeq       int
}

type novaToken struct {
	user    OpenStackUser
	project string // "" for an unscoped token, which Nova refuses
	expires time.Time
}

type novaServer struct {
	NovaServer
	cancel context.CancelFunc // ends the server's life (Boot's ctx)
	fail   bool               // goes to ERROR instead of ACTIVE
}

func (s *novaServer) snapshot() NovaServer {
	c := s.NovaServer
	c.Metadata = maps.Clone(s.Metadata)
	c.UserData = slices.Clone(s.UserData)
	c.Networks = slices.Clone(s.Networks)
	return c
}

// NewOpenStack starts a simulator on 127.0.0.1.
func NewOpenStack(opts OpenStackOptions) (*OpenStack, error) {
	if opts.BootDelay < 0 || opts.DeleteDelay < 0 || opts.TokenTTL < 0 || opts.MaxInstances < 0 {
		return nil, errors.New("cloudsim: negative delay or quota")
	}
	s := &OpenStack{
		log:         opts.Logger,
		region:      opts.Region,
		users:       slices.Clone(opts.Users),
		flavors:     slices.Clone(opts.Flavors),
		images:      slices.Clone(opts.Images),
		networks:    slices.Clone(opts.Networks),
		tokenTTL:    opts.TokenTTL,
		boot:        opts.Boot,
		stop:        make(chan struct{}),
		tokens:      map[string]novaToken{},
		servers:     map[string]*novaServer{},
		calls:       map[string]int{},
		lose:        map[string]int{},
		bootDelay:   opts.BootDelay,
		deleteDelay: opts.DeleteDelay,
		maxServers:  opts.MaxInstances,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.region == "" {
		s.region = "RegionOne"
	}
	if s.tokenTTL == 0 {
		s.tokenTTL = time.Hour
	}
	if s.flavors == nil {
		s.flavors = DefaultNovaFlavors()
	}
	if s.images == nil {
		s.images = []OpenStackResource{{ID: novaUUID(), Name: "ubuntu-24.04"}, {ID: novaUUID(), Name: "debian-12"}}
	}
	if s.networks == nil {
		s.networks = []OpenStackResource{{ID: novaUUID(), Name: "private"}}
	}
	for _, u := range s.users {
		if u.Name == "" || u.Password == "" || u.Project == "" || u.Domain == "" {
			return nil, errors.New("cloudsim: an OpenStack user needs a name, password, project and domain")
		}
	}
	if len(s.users) == 0 {
		s.users = []OpenStackUser{{Name: "wharf", Password: randomHex(16), Project: "wharf", Domain: "Default"}}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s, nil
}

// URL is the Keystone endpoint, http://127.0.0.1:PORT/v3 (the server's
// root works too, as Keystone's does for clients that add /v3).
func (s *OpenStack) URL() string { return s.srv.URL + "/v3" }

// Region is the region of the catalog's endpoints.
func (s *OpenStack) Region() string { return s.region }

// User returns the first user Keystone knows.
func (s *OpenStack) User() OpenStackUser { return s.users[0] }

// Flavors, Images and Networks are what the simulator offers.
func (s *OpenStack) Flavors() []NovaFlavor         { return slices.Clone(s.flavors) }
func (s *OpenStack) Images() []OpenStackResource   { return slices.Clone(s.images) }
func (s *OpenStack) Networks() []OpenStackResource { return slices.Clone(s.networks) }

// Close stops the server, ends every server's Boot context and waits
// until every Boot has returned.
func (s *OpenStack) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.stop)
		for _, sv := range s.order {
			sv.cancel()
		}
		s.mu.Unlock()
		s.srv.Close()
		s.wg.Wait()
	})
}

// Inject adds a fault; faults are matched in the order they were added.
func (s *OpenStack) Inject(f NovaFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// Throttle answers the next n calls of call ("" for any) with 429 and
// Retry-After: retryAfter seconds.
func (s *OpenStack) Throttle(call string, n, retryAfter int) {
	s.Inject(NovaFault{Call: call, Status: http.StatusTooManyRequests, RetryAfter: retryAfter, Times: max(n, 1)})
}

// ClearFaults removes every fault and lost answer.
func (s *OpenStack) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	clear(s.lose)
	s.failBoots = 0
}

// SetLatency delays every answer by d.
func (s *OpenStack) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// LoseAnswers makes the next n successful calls of call ("" for any)
// take effect and then close the connection without an answer.
func (s *OpenStack) LoseAnswers(call string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[call] += n
}

// SetBootDelay changes the boot delay of servers created from now on.
func (s *OpenStack) SetBootDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootDelay = d
}

// SetMaxInstances changes the quota of servers (0: none).
func (s *OpenStack) SetMaxInstances(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxServers = n
}

// FailBoots makes the next n servers created go to ERROR, with message
// as their fault, instead of ACTIVE.
func (s *OpenStack) FailBoots(n int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failBoots = n
	s.failMessage = message
}

// ExpireTokens ends every token issued so far, as if their time ran
// out: clients must authenticate again.
func (s *OpenStack) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.tokens {
		t.expires = time.Now().Add(-time.Second)
		s.tokens[id] = t
	}
}

// Calls returns how many calls of each name were received (after the
// token check), faulted ones included.
func (s *OpenStack) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// ResetCalls sets every call count to zero.
func (s *OpenStack) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// Servers returns a snapshot of every server still listed, in creation
// order.
func (s *OpenStack) Servers() []NovaServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NovaServer, 0, len(s.order))
	for _, sv := range s.order {
		out = append(out, sv.snapshot())
	}
	return out
}

// Server returns a snapshot of one server.
func (s *OpenStack) Server(id string) (NovaServer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok {
		return NovaServer{}, false
	}
	return sv.snapshot(), true
}

// faultLocked returns the first fault that matches call, counting it.
func (s *OpenStack) faultLocked(call string) *novaError {
	for i, f := range s.faults {
		if f.Call != "" && f.Call != call {
			continue
		}
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		e := &novaError{Status: f.Status, Message: f.Message, RetryAfter: f.RetryAfter}
		if e.Status == 0 {
			e.Status = http.StatusInternalServerError
		}
		if e.Message == "" {
			e.Message = novaDefaultMessage(e.Status)
		}
		return e
	}
	return nil
}

func (s *OpenStack) takeLost(call string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range []string{call, ""} {
		if s.lose[c] > 0 {
			s.lose[c]--
			return true
		}
	}
	return false
}

// liveLocked counts the servers the quota counts: every one not deleted.
func (s *OpenStack) liveLocked() int {
	n := 0
	for _, sv := range s.order {
		if sv.Status != NovaDeleted {
			n++
		}
	}
	return n
}

// launchLocked starts a server's life: BUILD for the boot delay, then
// ACTIVE with Boot called (or ERROR), until deleted or closed.
func (s *OpenStack) launchLocked(sv *novaServer) {
	ctx, cancel := context.WithCancel(context.Background())
	sv.cancel = cancel
	if s.closed {
		cancel() // a call that raced with Close: the server never boots
	}
	if s.failBoots > 0 {
		s.failBoots--
		sv.fail = true
	}
	s.servers[sv.ID] = sv
	s.order = append(s.order, sv)
	delay := s.bootDelay
	s.wg.Add(1)
	go s.live(ctx, sv, delay)
}

func (s *OpenStack) live(ctx context.Context, sv *novaServer, bootDelay time.Duration) {
	defer s.wg.Done()
	t := time.NewTimer(bootDelay)
	select {
	case <-t.C:
		s.mu.Lock()
		booting := sv.Status == NovaBuild
		if booting && sv.fail {
			sv.Status = NovaError
			sv.Fault = s.failMessage
			if sv.Fault == "" {
				sv.Fault = "No valid host was found. There are not enough hosts available."
			}
			booting = false
		} else if booting {
			sv.Status = NovaActive
			sv.Booted = s.boot != nil
		}
		inst := sv.instance()
		s.mu.Unlock()
		if booting && s.boot != nil {
			if err := s.boot(ctx, inst); err != nil {
				s.log.Debug("nova server boot failed", "server", sv.ID, "error", err)
				s.mu.Lock()
				sv.BootError = err.Error()
				s.mu.Unlock()
			}
		}
		<-ctx.Done()
	case <-ctx.Done():
		t.Stop()
	}
	select {
	case <-s.stop:
		return // closing: nobody looks any more
	default:
	}
	s.mu.Lock()
	delay := s.deleteDelay
	s.mu.Unlock()
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
	defer s.mu.Unlock()
	delete(s.servers, sv.ID)
	if i := slices.Index(s.order, sv); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

// instance is the server as a BootFunc sees it.
func (sv *novaServer) instance() Instance {
	return Instance{
		ID:           sv.ID,
		ImageID:      sv.ImageID,
		InstanceType: sv.FlavorID,
		SubnetID:     novaFirstOr(sv.Networks, ""),
		Tags:         maps.Clone(sv.Metadata),
		UserData:     slices.Clone(sv.UserData),
		State:        StateRunning,
		PrivateIP:    sv.IP,
		LaunchTime:   sv.Created,
		Booted:       true,
	}
}

func novaFirstOr(l []string, def string) string {
	if len(l) > 0 {
		return l[0]
	}
	return def
}

// novaUUID is a random version 4 UUID, as Nova, Glance and Neutron make
// their ids.
func novaUUID() string {
	h := randomHex(16)
	b := []byte(h)
	b[12] = '4'
	b[16] = "89ab"[b[16]%4]
	return fmt.Sprintf("%s-%s-%s-%s-%s", b[:8], b[8:12], b[12:16], b[16:20], b[20:])
}
