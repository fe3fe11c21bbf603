package provision

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/providers"
)

// syncAccounts opens a client per account, again when the account
// changes (which also forgets its backoff).
func (p *Provisioner) syncAccounts(ctx context.Context, x *index, now time.Time) {
	for _, acct := range x.v.Accounts {
		p.mu.Lock()
		a := p.accounts[acct.Name]
		if a != nil && a.version != acct.ModifyIndex {
			a = nil
			delete(p.lists, acct.Name)
		}
		opening := a == nil || a.prov == nil && !now.Before(a.until)
		p.mu.Unlock()
		if opening {
			prov, err := p.cfg.Store.Open(acct)
			p.mu.Lock()
			if a == nil {
				a = &account{version: acct.ModifyIndex}
				p.accounts[acct.Name] = a
			}
			a.prov = prov
			p.mu.Unlock()
			if err != nil {
				p.backoff(acct.Name, now, err)
				p.tell(ctx, "provider/"+acct.Name, "", "open", "provision.failed", fmt.Sprintf("provider %s: %v", acct.Name, err))
				continue
			}
		}
	}
}

// listDue starts the periodic listing of each account.
func (p *Provisioner) listDue(ctx context.Context, x *index, now time.Time) {
	for _, acct := range x.v.Accounts {
		p.mu.Lock()
		l := p.lists[acct.Name]
		due := l == nil || now.Sub(l.at) >= p.cfg.ListEvery
		p.mu.Unlock()
		if due {
			p.startList(ctx, acct)
		}
	}
}

// callable notes, at the start of a round, which accounts may be called
// in it: every call a round starts sees the same answer, so the first to
// fail does not shut out the others of its round (a listing would
// otherwise always win the race against creates).
func (p *Provisioner) callable(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients = map[string]providers.Provider{}
	for name, a := range p.accounts {
		if a.prov != nil && !now.Before(a.until) {
			p.clients[name] = a.prov
		}
	}
}

// client returns an account's provider unless the account was backing
// off when this round began.
func (p *Provisioner) client(name string) providers.Provider {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clients[name]
}

// backoff counts a failed call of an account begun at began: the delay
// doubles (with jitter, capped) once per failure, however many calls in
// flight meanwhile fail too. Bad credentials pause the account for
// FailurePause, or until it changes.
func (p *Provisioner) backoff(name string, began time.Time, err error) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accounts[name]
	switch {
	case a == nil:
	case providers.KindOf(err) == providers.KindBadCredentials:
		a.refused, a.until = err, now.Add(p.cfg.FailurePause)
	case began.After(a.bumped): // else counted already
		a.bumped = now
		a.delay = min(max(2*a.delay, p.cfg.BackoffMin), p.cfg.BackoffMax)
		a.until = now.Add(a.delay/2 + p.jitter(a.delay/2))
	}
}

func (p *Provisioner) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if p.cfg.Jitter != nil {
		return p.cfg.Jitter(d)
	}
	return rand.N(d)
}

// succeeded resets an account's backoff.
func (p *Provisioner) succeeded(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.accounts[name]; a != nil {
		a.delay, a.until, a.refused = 0, time.Time{}, nil
	}
	delete(p.told, "provider/"+name)
}

// refused is the bad-credentials error that pauses an account, if any.
func (p *Provisioner) refused(name string, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.accounts[name]; a != nil && a.refused != nil && now.Before(a.until) {
		return a.refused
	}
	return nil
}

// call makes one cloud call with a timeout, and counts it.
func (p *Provisioner) call(ctx context.Context, acct, action string, timeout time.Duration, f func(ctx context.Context) error) error {
	began := p.cfg.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := safeCall(cctx, f)
	cancel()
	if ctx.Err() != nil { // the term ended: nothing to learn from this call
		return ctx.Err()
	}
	p.m.call(acct, action, err)
	if err != nil {
		p.backoff(acct, began, err)
	} else {
		p.succeeded(acct)
	}
	return err
}

// startCreate starts the (idempotent) create of a machine in state
// creating. The request is a function of the machine and its pool, so that
// a retry — after a lost answer or by a new leader — finds the same machine.
func (p *Provisioner) startCreate(ctx context.Context, x *index, m *state.Machine, pool *state.Pool) {
	acct := x.accounts[m.Provider]
	if acct == nil || x.v.CAFingerprint == "" {
		return
	}
	prov := p.client(acct.Name)
	if prov == nil {
		return
	}
	tmpl, err := providers.DecodeTemplate(acct.Type, pool.Provision.Template)
	if err != nil {
		p.set(ctx, m, state.MachineFailed, fmt.Sprintf("template: %v", err), p.cfg.Now())
		p.tell(ctx, pool.Name, pool.Name, "template:"+err.Error(), "provision.failed", fmt.Sprintf("pool %s: %v", pool.Name, err))
		return
	}
	token := pki.JoinToken{CAFingerprint: x.v.CAFingerprint, ID: m.JoinToken, Secret: p.cfg.Store.JoinSecret(m.ID)}
	ud, err := p.cfg.UserData(pool.Name, m.ID, token.String())
	if err != nil { // the hub's own settings: retried every round, told once
		p.tell(ctx, pool.Name, pool.Name, "user-data:"+err.Error(), "provision.failed", fmt.Sprintf("pool %s: user data: %v", pool.Name, err))
		return
	}
	req := providers.CreateRequest{MachineID: m.ID, Cluster: p.cfg.Cluster, Pool: pool.Name, Template: tmpl, UserData: ud,
		Tags: map[string]string{providers.TagCluster: p.cfg.Cluster, providers.TagPool: pool.Name, providers.TagMachine: m.ID}}
	mc := *m
	p.start(ctx, m.ID, func(ctx context.Context) {
		var got providers.Machine
		err := p.call(ctx, acct.Name, "create", p.cfg.CreateTimeout, func(ctx context.Context) (err error) {
			got, err = prov.Create(ctx, req)
			return err
		})
		now := p.cfg.Now()
		switch {
		case ctx.Err() != nil:
		case err != nil && providers.Retryable(err):
			if mc.Error != err.Error() {
				p.set(ctx, &mc, mc.State, err.Error(), now)
			}
			p.cloudFailed(ctx, acct.Name, pool.Name, err)
		case err != nil:
			p.set(ctx, &mc, state.MachineFailed, err.Error(), now)
			p.cloudFailed(ctx, acct.Name, pool.Name, err)
		default:
			c := Change{ID: mc.ID, From: mc.State, State: state.MachineBooting, ProviderID: got.ProviderID, Time: now}
			err := p.cfg.Store.SetMachine(ctx, c)
			if isConflict(err) {
				// Moved on meanwhile (an admin deleted it, or it enrolled
				// already): keep the cloud id, whatever the state.
				p.keepProviderID(ctx, mc.ID, got.ProviderID)
			} else if err != nil {
				p.log.Warn("write state", "machine", mc.ID, "err", err)
			}
		}
	})
}

// keepProviderID writes a machine's cloud id without changing its state.
func (p *Provisioner) keepProviderID(ctx context.Context, id, providerID string) {
	v, err := p.cfg.Store.View(ctx)
	if err != nil {
		return
	}
	for _, m := range v.Machines {
		if m.ID == id && m.ProviderID == "" {
			c := Change{ID: id, From: m.State, ProviderID: providerID, Error: m.Error, Time: p.cfg.Now()}
			p.write(ctx, "machine "+id+" provider id", func(ctx context.Context) error { return p.cfg.Store.SetMachine(ctx, c) })
		}
	}
}

// startDelete deletes a deleting machine in its cloud, then removes it
// from the state. A machine whose cloud id was never written is looked up
// by its wharf-machine tag in a listing begun after this node's last call
// for it.
func (p *Provisioner) startDelete(ctx context.Context, x *index, m *state.Machine) {
	acct := x.accounts[m.Provider]
	if acct == nil { // nothing can be in an account that is gone
		p.write(ctx, "remove machine "+m.ID, func(ctx context.Context) error { return p.cfg.Store.RemoveMachine(ctx, m.ID) })
		return
	}
	prov := p.client(acct.Name)
	if prov == nil {
		return
	}
	ids := []string{m.ProviderID}
	if m.ProviderID == "" {
		p.mu.Lock()
		if p.deletingSeq[m.ID] == 0 {
			p.seq++
			p.deletingSeq[m.ID] = p.seq
		}
		after := max(p.deletingSeq[m.ID], p.doneSeq[m.ID])
		l := p.lists[acct.Name]
		fresh := l != nil && l.startSeq > after
		p.mu.Unlock()
		if !fresh {
			p.startList(ctx, acct)
			return
		}
		ids = ids[:0]
		for _, c := range l.machines {
			if c.MachineID == m.ID && c.State != providers.StateGone {
				ids = append(ids, c.ProviderID)
			}
		}
	}
	id, pool := m.ID, m.Pool
	p.start(ctx, id, func(ctx context.Context) {
		for _, pid := range ids {
			err := p.call(ctx, acct.Name, "delete", p.cfg.CallTimeout, func(ctx context.Context) error { return prov.Delete(ctx, pid) })
			if err != nil {
				if ctx.Err() == nil {
					p.cloudFailed(ctx, acct.Name, pool, err)
				}
				return
			}
		}
		p.write(ctx, "remove machine "+id, func(ctx context.Context) error { return p.cfg.Store.RemoveMachine(ctx, id) })
	})
}

// startShape asks the cloud for one machine's capacity of a pool's
// template; the answer (or "cannot tell") is kept per template and
// account version.
func (p *Provisioner) startShape(ctx context.Context, x *index, pool *state.Pool, acct *state.ProviderAccount, key string) {
	prov := p.client(acct.Name)
	if prov == nil {
		return
	}
	tmpl, err := providers.DecodeTemplate(acct.Type, pool.Provision.Template)
	if err != nil {
		p.mu.Lock()
		p.shapes[pool.Name] = shapeEntry{key: key}
		p.mu.Unlock()
		return
	}
	name := pool.Name
	p.start(ctx, "shape/"+name, func(ctx context.Context) {
		var r providers.Resources
		var ok bool
		err := p.call(ctx, acct.Name, "shape", p.cfg.CallTimeout, func(ctx context.Context) (err error) {
			r, ok, err = prov.Shape(ctx, tmpl)
			return err
		})
		if ctx.Err() != nil || err != nil && providers.Retryable(err) {
			return // asked again next round, after the backoff
		}
		p.mu.Lock()
		p.shapes[name] = shapeEntry{key: key, r: r, ok: ok && err == nil && r.CPUMillis > 0 && r.MemoryBytes > 0}
		p.mu.Unlock()
	})
}

// startList lists an account's machines of this cluster.
func (p *Provisioner) startList(ctx context.Context, acct *state.ProviderAccount) {
	prov := p.client(acct.Name)
	if prov == nil {
		return
	}
	name, version := acct.Name, acct.ModifyIndex
	p.start(ctx, "list/"+name, func(ctx context.Context) {
		p.mu.Lock()
		p.seq++
		l := &listing{version: version, startSeq: p.seq, at: p.cfg.Now(), deleted: map[string]bool{}}
		p.mu.Unlock()
		err := p.call(ctx, name, "list", p.cfg.CallTimeout, func(ctx context.Context) (err error) {
			l.machines, err = prov.List(ctx, p.cfg.Cluster)
			return err
		})
		if err != nil {
			if ctx.Err() == nil {
				p.cloudFailed(ctx, name, "", err)
			}
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if a := p.accounts[name]; a == nil || a.version != version {
			return
		}
		p.seq++
		l.doneSeq = p.seq
		p.lists[name] = l
	})
}

// collect deletes cloud machines tagged with this cluster that the state
// does not know (by wharf-machine tag or cloud id) once they have been
// seen unknown for OrphanGrace, and writes the cloud id of machines whose
// create answer was lost. Only listings that ended before this round's
// view are used: a machine is in the state before its create, so a
// listing older than the view cannot show a machine the view lacks but
// for a leak (or an older leader's create, which the grace covers).
func (p *Provisioner) collect(ctx context.Context, x *index, now time.Time, viewSeq uint64) {
	p.mu.Lock()
	lists := map[string]*listing{}
	for name, l := range p.lists {
		if l.doneSeq < viewSeq { // else it is looked at next round
			lists[name] = l
		}
	}
	p.mu.Unlock()
	seen := map[string]bool{} // unknown cloud machines of the accounts looked at
	for name, l := range lists {
		acct := x.accounts[name]
		if acct == nil {
			continue
		}
		p.vanished(ctx, x, name, l, now, viewSeq)
		for _, c := range l.machines {
			if c.State == providers.StateGone {
				continue
			}
			if m := x.machines[c.MachineID]; m != nil || x.byCloud[name+"/"+c.ProviderID] != nil {
				if m != nil && m.ProviderID == "" && m.Provider == name && m.State != state.MachineDeleting && !p.busy(m.ID, viewSeq) {
					ch := Change{ID: m.ID, From: m.State, ProviderID: c.ProviderID, Error: m.Error, Time: now}
					p.write(ctx, "machine "+m.ID+" provider id", func(ctx context.Context) error { return p.cfg.Store.SetMachine(ctx, ch) })
				}
				continue
			}
			key := name + "/" + c.ProviderID
			seen[key] = true
			p.mu.Lock()
			first, had := p.orphans[key]
			if !had {
				p.orphans[key] = now
			}
			gone := l.deleted[c.ProviderID]
			p.mu.Unlock()
			if !had || gone || now.Sub(first) < p.cfg.OrphanGrace {
				continue
			}
			p.startOrphan(ctx, name, l, c, now.Sub(first))
		}
	}
	p.mu.Lock()
	for key := range p.orphans {
		acct, _, _ := strings.Cut(key, "/")
		if _, looked := lists[acct]; looked && !seen[key] || x.accounts[acct] == nil {
			delete(p.orphans, key)
		}
	}
	p.mu.Unlock()
}

// vanished has machines whose cloud machine is gone — terminated
// outside Wharf, or a spot instance reclaimed — deleted (and so
// replaced): those the listing shows gone, and ready ones it no longer
// shows whose host is down too (two witnesses: a listing alone may lag
// behind a create, or miss a page).
func (p *Provisioner) vanished(ctx context.Context, x *index, acct string, l *listing, now time.Time, viewSeq uint64) {
	byID := make(map[string]providers.Machine, len(l.machines))
	for _, c := range l.machines {
		byID[c.ProviderID] = c
	}
	for _, m := range x.v.Machines {
		if m.Provider != acct || m.ProviderID == "" || m.State != state.MachineBooting && m.State != state.MachineReady {
			continue
		}
		c, listed := byID[m.ProviderID]
		gone := listed && c.State == providers.StateGone ||
			!listed && m.State == state.MachineReady && l.at.Sub(m.StateSince) > p.cfg.OrphanGrace &&
				x.hostOf[m.ID] != nil && x.hostOf[m.ID].State == state.HostDown
		if gone && !p.busy(m.ID, viewSeq) && p.set(ctx, m, state.MachineDeleting, "its cloud machine "+m.ProviderID+" is gone", now) {
			p.tell(ctx, m.Pool, m.Pool, "vanished", "provision.failed",
				fmt.Sprintf("pool %s: machine %s (%s) was terminated outside Wharf; it is replaced", m.Pool, m.ID, m.ProviderID))
		}
	}
}

func (p *Provisioner) startOrphan(ctx context.Context, acct string, l *listing, c providers.Machine, age time.Duration) {
	prov := p.client(acct)
	if prov == nil {
		return
	}
	p.start(ctx, "orphan/"+acct+"/"+c.ProviderID, func(ctx context.Context) {
		err := p.call(ctx, acct, "delete", p.cfg.CallTimeout, func(ctx context.Context) error { return prov.Delete(ctx, c.ProviderID) })
		if err != nil {
			if ctx.Err() == nil {
				p.cloudFailed(ctx, acct, "", err)
			}
			return
		}
		p.mu.Lock()
		l.deleted[c.ProviderID] = true
		// A listing that began before this delete still shows the machine
		// alive: its grace starts over, so only a machine that outlives a
		// whole grace after its delete is deleted again.
		if _, ok := p.orphans[acct+"/"+c.ProviderID]; ok {
			p.orphans[acct+"/"+c.ProviderID] = p.cfg.Now()
		}
		p.mu.Unlock()
		msg := fmt.Sprintf("provider %s: deleted %s (machine %q, pool %q), tagged with this cluster but unknown to it for %v",
			acct, c.ProviderID, c.MachineID, c.Tags[providers.TagPool], age.Round(time.Second))
		p.log.Info("deleted unknown machine", "provider", acct, "provider_id", c.ProviderID, "machine", c.MachineID)
		p.record(ctx, state.Event{Time: p.cfg.Now(), Type: "provision.orphan", Subject: "provider/" + acct, Message: msg})
	})
}

// cloudFailed tells of a cloud's failure once per distinct error: on the
// pool when a pool's call failed, else on the account; bad credentials are
// the account's whichever call met them.
func (p *Provisioner) cloudFailed(ctx context.Context, acct, pool string, err error) {
	key := errorKind(err)
	var e *providers.Error
	if errors.As(err, &e) && e.Code != "" {
		key += ":" + e.Code
	} else {
		key += ":" + err.Error()
	}
	subject, msg := "provider/"+acct, fmt.Sprintf("provider %s: %v", acct, err)
	if pool != "" && providers.KindOf(err) != providers.KindBadCredentials {
		subject, msg = pool, fmt.Sprintf("pool %s (provider %s): %v", pool, acct, err)
	}
	p.tell(ctx, subject, pool, key, "provision.failed", msg)
}

// tell records an event unless the same error was the last told for
// subject.
func (p *Provisioner) tell(ctx context.Context, subject, pool, key, typ, msg string) {
	p.mu.Lock()
	if p.told[subject] == key {
		p.mu.Unlock()
		return
	}
	p.told[subject] = key
	p.mu.Unlock()
	p.log.Warn("provision", "subject", subject, "msg", msg)
	p.record(ctx, state.Event{Time: p.cfg.Now(), Type: typ, Subject: subject, Pool: pool, Message: msg})
}

// toldOK forgets subject's last error: the next failure is told again.
// A pool's is forgotten when one of its machines becomes ready, an
// account's on its next successful call.
func (p *Provisioner) toldOK(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.told, subject)
}

func (p *Provisioner) record(ctx context.Context, ev state.Event) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	p.cfg.Store.Event(ctx, ev)
}

// errorKind labels an error for metrics and event keys.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case providers.KindOf(err) != "":
		return string(providers.KindOf(err))
	}
	return "error"
}

func isConflict(err error) bool {
	return errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrNotFound)
}

// safeCall runs a cloud call, turning a panic in the provider or its SDK
// into a retryable error: a cloud answering in a way the code did not
// expect fails that call, not the hub.
func safeCall(ctx context.Context, f func(ctx context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &providers.Error{Kind: providers.KindUnavailable, Message: fmt.Sprintf("the provider failed: %v", r)}
		}
	}()
	return f(ctx)
}
