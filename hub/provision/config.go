package provision

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// UserDataFunc renders the cloud-init user data that installs the agent on
// a machine and enrolls it in pool with joinToken. It must be a function of
// its arguments (and of settings that rarely change, such as the hub's
// sorted addresses): a create retried with other user data is refused by
// clouds with client tokens.
type UserDataFunc func(pool, machineID, joinToken string) ([]byte, error)

// Config is what a Provisioner needs. Store, Cluster and UserData are
// required; every other zero value means the default written beside it.
type Config struct {
	Store    Store
	UserData UserDataFunc
	// Cluster names this cluster in the wharf-cluster tag of every machine
	// it creates and in the List that finds leaked ones.
	Cluster string

	// Tick is how often the loop looks at the state without being woken
	// (1s).
	Tick time.Duration
	// Parallel bounds the cloud calls in flight (8).
	Parallel int
	// CreateTimeout bounds one create call (2m); CallTimeout every other
	// cloud call and every store write (30s).
	CreateTimeout time.Duration
	CallTimeout   time.Duration
	// BackoffMin and BackoffMax bound the backoff of an account whose calls
	// fail or are throttled (1s, 2m): it doubles per failure, with jitter,
	// and resets on a success.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// FailurePause is how long a refusal that needs an admin (quota,
	// credentials, a bad template) pauses a pool's growth when neither the
	// pool nor the account changes meanwhile (10m).
	FailurePause time.Duration
	// ListEvery is how often each account's machines are listed to find
	// leaked ones (30s).
	ListEvery time.Duration
	// OrphanGrace is how long a machine tagged with this cluster but
	// unknown to the state is left alone before it is deleted (twice
	// CreateTimeout): a create of another, older leader may still be
	// landing.
	OrphanGrace time.Duration
	// DrainTimeout is how long a draining machine waits for its host's
	// instances to move before it is deleted anyway (10m).
	DrainTimeout time.Duration
	// DefaultBootTimeout and DefaultScaleDownAfter stand in for a pool's
	// zero boot_timeout and scale_down_after (10m each).
	DefaultBootTimeout    time.Duration
	DefaultScaleDownAfter time.Duration

	// Now is the clock (time.Now). Tests pass a fake one.
	Now func() time.Time
	// Jitter returns a random duration in [0, d) for backoffs (uniform);
	// nil uses math/rand/v2.
	Jitter func(d time.Duration) time.Duration
	// Metrics: nil makes a private set nobody reads.
	Metrics *Metrics
	// Logger: nil discards.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.Tick, time.Second)
	set(&c.CreateTimeout, 2*time.Minute)
	set(&c.CallTimeout, 30*time.Second)
	set(&c.BackoffMin, time.Second)
	set(&c.BackoffMax, 2*time.Minute)
	set(&c.FailurePause, 10*time.Minute)
	set(&c.ListEvery, 30*time.Second)
	set(&c.OrphanGrace, 2*c.CreateTimeout)
	set(&c.DrainTimeout, 10*time.Minute)
	set(&c.DefaultBootTimeout, 10*time.Minute)
	set(&c.DefaultScaleDownAfter, 10*time.Minute)
	if c.Parallel == 0 {
		c.Parallel = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a missing dependency or a negative setting.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("provision: no store")
	case c.UserData == nil:
		return errors.New("provision: no user data renderer")
	case c.Cluster == "":
		return errors.New("provision: no cluster name (the wharf-cluster tag)")
	case c.Parallel < 0:
		return fmt.Errorf("provision: parallel %d < 0", c.Parallel)
	}
	for _, d := range []time.Duration{c.Tick, c.CreateTimeout, c.CallTimeout, c.BackoffMin, c.BackoffMax,
		c.FailurePause, c.ListEvery, c.OrphanGrace, c.DrainTimeout, c.DefaultBootTimeout, c.DefaultScaleDownAfter} {
		if d < 0 {
			return fmt.Errorf("provision: negative duration %v", d)
		}
	}
	return nil
}
