package identity

import (
	"log/slog"
	"sync/atomic"
)

// Keeper holds an agent's identity while it runs: none until it enrols,
// then the current one, replaced by each renewal once it is on disk.
type Keeper struct {
	dir       string
	name      string // the host's name, what its CSRs ask for
	log       *slog.Logger
	cur       atomic.Pointer[Identity]
	rotations atomic.Uint64
}

// Open loads the identity kept in dir, if any, for the host called name.
func Open(dir, name string, log *slog.Logger) (*Keeper, error) {
	id, err := Load(dir)
	if err != nil {
		return nil, err
	}
	k := &Keeper{dir: dir, name: name, log: log}
	k.cur.Store(id)
	return k, nil
}

// Current returns the identity in use; nil before enrolment.
func (k *Keeper) Current() *Identity { return k.cur.Load() }

// HostID returns the host id; "" before enrolment.
func (k *Keeper) HostID() string {
	if id := k.cur.Load(); id != nil {
		return id.HostID
	}
	return ""
}

// Rotations returns how many times the certificate was renewed.
func (k *Keeper) Rotations() uint64 { return k.rotations.Load() }

// replace makes what dir holds the current identity: it was just saved
// whole, and is read back as a restarted agent would.
func (k *Keeper) replace() (*Identity, error) {
	id, err := Load(k.dir)
	if err != nil {
		return nil, err
	}
	k.cur.Store(id)
	return id, nil
}
