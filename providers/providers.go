// Package providers is the one small interface Wharf drives every cloud
// through (AWS, Alibaba Cloud, vSphere, OpenStack, and bare metal over SSH):
// create a machine with user data and tags, delete it, describe it, and list
// the cluster's machines by tag. Each cloud lives in its own subpackage with
// its SDK; they register themselves here (import them for their side
// effect, like database/sql drivers), so that packages most tests import do
// not link the heavy SDKs.
package providers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Tags every created machine carries; List finds a cluster's machines by
// TagCluster.
const (
	TagCluster = "wharf-cluster"
	TagPool    = "wharf-pool"
	TagMachine = "wharf-machine"
)

// Account is a provider account as the hub keeps it, with its credentials
// decrypted (they are held in memory only while a call needs them).
type Account struct {
	Name        string
	Type        string // aws, aliyun, vsphere, openstack, ssh
	Region      string
	Endpoint    string // overrides the cloud's API address ("" = the cloud's own)
	Insecure    bool   // skip TLS verification of Endpoint
	Credentials Credentials
}

// CreateRequest asks for one machine. MachineID is Wharf's id for it and
// the idempotency key: a create retried with the same MachineID (after a
// lost answer or a hub restart) yields the same machine, never a second one
// (the cloud's client token where it has one, else a lookup by the
// wharf-machine tag before creating).
type CreateRequest struct {
	MachineID string
	Cluster   string
	Pool      string
	// Template is the pool's template, decoded for the provider's type
	// (see DecodeTemplate).
	Template Template
	// UserData is the cloud-init document that installs and enrolls the
	// agent; the provider encodes it as its cloud expects.
	UserData []byte
	// Tags are set on the machine at creation; they include TagCluster,
	// TagPool and TagMachine.
	Tags map[string]string
}

// Machine is what the cloud says of one machine.
type Machine struct {
	ProviderID string // EC2/ECS/Nova instance id, vSphere moref, HOST:PORT for SSH
	MachineID  string // from the wharf-machine tag ("" when untagged)
	State      State
	Tags       map[string]string
	Addresses  []string
}

// State is a machine's life in its cloud, mapped to four values.
type State string

// Machine states as the cloud reports them.
const (
	StatePending State = "pending" // being created or booting
	StateRunning State = "running"
	StateStopped State = "stopped" // exists, not running
	StateGone    State = "gone"    // terminated or being terminated
)

// Resources is the capacity of one machine of a template.
type Resources struct {
	CPUMillis   int64
	MemoryBytes int64
}

// Provider drives one account of one cloud. Implementations are safe for
// concurrent use. Errors from the cloud are *Error with a Kind where the
// cloud's answer says which; anything else is KindUnavailable or a plain
// error (a bug or a transport failure, retried with backoff).
type Provider interface {
	// Check validates the credentials with one cheap read call.
	Check(ctx context.Context) error
	// Create creates (or, for a MachineID seen before, finds) a machine.
	Create(ctx context.Context, req CreateRequest) (Machine, error)
	// Delete deletes a machine; a machine already gone is not an error.
	Delete(ctx context.Context, providerID string) error
	// Describe reports one machine; KindNotFound when the cloud has none.
	Describe(ctx context.Context, providerID string) (Machine, error)
	// List returns the machines tagged wharf-cluster=cluster, gone ones
	// included while the cloud still lists them.
	List(ctx context.Context, cluster string) ([]Machine, error)
	// Shape is the capacity of one machine of the template, when the cloud
	// can tell before creating one (ok false when it cannot).
	Shape(ctx context.Context, t Template) (r Resources, ok bool, err error)
}

// Kind classifies a cloud's refusal.
type Kind string

// Error kinds. Throttled and Unavailable are retried with backoff; the
// others need an admin (credentials, quota, template) and are shown on the
// machine and the pool.
const (
	KindNotFound       Kind = "not_found"
	KindThrottled      Kind = "throttled"
	KindQuota          Kind = "quota"
	KindBadCredentials Kind = "bad_credentials"
	KindBadRequest     Kind = "bad_request" // e.g. an unknown instance type or image
	KindHostKey        Kind = "host_key"    // an SSH host key that does not match its pin
	KindUnavailable    Kind = "unavailable" // the cloud did not answer, or failed
)

// Error is a cloud's refusal: Kind for Wharf, Code and Message as the
// cloud said them (shown to admins verbatim).
type Error struct {
	Kind    Kind
	Code    string // the cloud's error code, e.g. "RequestLimitExceeded"
	Message string
	Err     error // the SDK's error, when there is one
}

func (e *Error) Error() string {
	switch {
	case e.Code != "" && e.Message != "":
		return e.Code + ": " + e.Message
	case e.Code != "":
		return e.Code
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return e.Err.Error()
	}
	return string(e.Kind)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf is err's Kind, "" when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// Retryable reports whether trying again later may succeed without an
// admin changing anything.
func Retryable(err error) bool {
	switch KindOf(err) {
	case KindThrottled, KindUnavailable, "":
		return true
	}
	return false
}

// Opener makes a Provider for an account of its type.
type Opener func(Account) (Provider, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a provider type available to Open; a subpackage calls it
// from init. Registering a type twice panics (two packages claim it).
func Register(typ string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := openers[typ]; dup {
		panic("providers: type " + typ + " registered twice")
	}
	openers[typ] = open
}

// Open makes a Provider for acct with the opener its type registered.
func Open(acct Account) (Provider, error) {
	mu.RLock()
	open := openers[acct.Type]
	mu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("provider type %q is not built into this binary (have %v)", acct.Type, Registered())
	}
	return open(acct)
}

// Registered lists the provider types this binary can open.
func Registered() []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for t := range openers {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
