package provision

import (
	"context"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/providers"
)

// Store is the provisioner's window on the replicated state: one
// consistent read (View) and the few writes the loop makes, each a Raft
// command. The hub wires it to the leader's state store and to Raft.
//
// Every write is decided on a View that may be stale by the time it
// applies, so the writes that move a machine on are guarded (SetMachine's
// From): a guard that no longer holds is an error wrapping
// state.ErrConflict, and the loop decides again on a fresh View. Writes may
// be called concurrently from several goroutines (one per machine at most).
type Store interface {
	// View reads everything the loop decides from at one Raft index. The
	// objects in it are the loop's to read, never to modify.
	View(ctx context.Context) (*View, error)

	// AddMachine writes a new machine, in state creating, before any cloud
	// call is made for it. In the same command it creates the machine's
	// join token: id m.JoinToken (16 hex digits), pool m.Pool, single use,
	// no expiry, bound to m.ID (JoinToken.Machine), whose secret is
	// JoinSecret(m.ID), stored only as pki.HashSecret of it. m carries ID,
	// Pool, Provider, JoinToken, State (creating), CreatedAt and
	// StateSince; the store sets Meta. A machine id that exists is an error
	// wrapping state.ErrConflict.
	AddMachine(ctx context.Context, m state.Machine) error

	// SetMachine applies c to machine c.ID if, and only if, the machine's
	// state is still c.From; otherwise (or when the machine is gone) it
	// changes nothing and returns an error wrapping state.ErrConflict (or
	// state.ErrNotFound). See Change for what each field does.
	SetMachine(ctx context.Context, c Change) error

	// RemoveMachine removes a machine from the state, together with its
	// join token and the host that enrolled with it, if any. The loop
	// calls it only once the cloud no longer has the machine (or never
	// had it). Removing a machine that is gone is not an error.
	RemoveMachine(ctx context.Context, id string) error

	// DrainHost starts the drain of a host, as an admin's drain does
	// (state draining; the planner moves its instances away and marks it
	// drained when none is left). Draining a draining or drained host
	// changes nothing.
	DrainHost(ctx context.Context, hostID string) error

	// JoinSecret is the secret of machine id's join token, in the form
	// pkg/pki's join tokens carry (raw base64url of 32 bytes). It must be a
	// function of the id alone, the same on every hub node and across
	// leader changes (e.g. an HMAC of the id under the cluster's data
	// key): the user data of a create retried after a leader change must
	// be byte for byte the first one's, or the cloud refuses the retry
	// (EC2: IdempotentParameterMismatch).
	JoinSecret(machineID string) string

	// Open returns a client for a provider account (its credentials
	// unsealed and handed to providers.Open). The loop caches the result
	// per account name and ModifyIndex, so Open is called again only when
	// the account changes.
	Open(acct *state.ProviderAccount) (providers.Provider, error)

	// Event records an event, best effort (an error is the store's to log).
	// The loop records a failure once per distinct error, not per retry.
	Event(ctx context.Context, ev state.Event)
}

// View is the state the loop decides from, read at one Raft index.
type View struct {
	// CAFingerprint is the agent CA's ("sha256:<hex>"), which every join
	// token carries; "" while the cluster has no CA (nothing is created).
	CAFingerprint string
	// Accounts are every provider account; their ModifyIndex tells the
	// loop an account changed (new credentials lift a pause).
	Accounts []*state.ProviderAccount
	// Pools are every pool; only those with Provision are grown and
	// shrunk. A pool's ModifyIndex tells the loop it changed.
	Pools []*state.Pool
	// Machines are every machine of every pool.
	Machines []*state.Machine
	// Hosts are every host (the loop looks at those of provisioned pools:
	// their machines' hosts, and the free capacity of the pool).
	Hosts []*state.Host
	// Pending is, per pool name, the instances the scheduler could not
	// place for lack of capacity that a new machine of that pool would
	// take: each pending instance counted in one pool only (the first
	// provisioned pool of its app's pools that could run it). Empty when
	// nothing waits.
	Pending map[string][]Demand
	// IdleSince is, per host id, since when the host has run no instance
	// (the later of its enrolment and the stop of its last instance);
	// absent or zero while it runs one. It should come from committed
	// state so that a new leader sees the same times; a time first seen by
	// this node is a safe stand-in (a leader change then delays a
	// scale-down, never hastens one).
	IdleSince map[string]time.Time
}

// Demand is a number of pending instances of one size.
type Demand struct {
	CPU    int // millicores per instance
	Memory int // MB (2^20 bytes) per instance
	Count  int
}

// Change moves one machine on; see Store.SetMachine.
type Change struct {
	ID string
	// From guards the change: it applies only while the machine's state is
	// From.
	From string
	// State is the new state; "" keeps From (a change of ProviderID or
	// Error alone). When it differs from From, StateSince becomes Time.
	State string
	// ProviderID, when not "", is set (the cloud's id for the machine);
	// "" keeps the current one.
	ProviderID string
	// Error replaces the machine's error ("" clears it): the cloud's
	// refusal verbatim, or why the machine is being replaced.
	Error string
	// Time is when the loop decided the change.
	Time time.Time
}
