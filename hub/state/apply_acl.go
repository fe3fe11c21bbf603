package state

import (
	"time"
)

func (w *writer) bootstrap(r *BootstrapRequest) *Error {
	if w.snap().Bootstrapped() {
		return Errorf(KindConflict, "ACL bootstrap already done")
	}
	if r.Token.Role != RoleAdmin || r.Token.Tenant != "" {
		return Errorf(KindInvalid, "the bootstrap token must be an admin token")
	}
	if e := w.tokenInsert(r.Token, r.Time); e != nil {
		return e
	}
	if err := w.txn.Insert(tableMeta, &metaEntry{ID: "meta", Bootstrapped: true, BootstrapIndex: w.index}); err != nil {
		return Errorf(KindInternal, "insert meta: %v", err)
	}
	w.touchTable(tableMeta)
	return nil
}

func (w *writer) tokenCreate(r *TokenCreateRequest) *Error {
	if r.Token.Tenant != "" {
		t, err := w.snap().Tenant(nil, r.Token.Tenant)
		if err != nil {
			return Errorf(KindInternal, "%v", err)
		}
		if t == nil {
			return &Error{Kind: KindRefused, Msg: "tenant " + r.Token.Tenant + " does not exist", Field: "tenant"}
		}
	}
	return w.tokenInsert(r.Token, r.Time)
}

func (w *writer) tokenInsert(t Token, now time.Time) *Error {
	if t.ID == "" || t.SecretHash == "" {
		return Errorf(KindInvalid, "token needs an id and a secret hash")
	}
	if old, _ := w.snap().Token(nil, t.ID); old != nil {
		return Errorf(KindConflict, "token id %s is taken", t.ID)
	}
	if old, _ := w.snap().TokenByHash(nil, t.SecretHash); old != nil {
		return Errorf(KindConflict, "token secret is taken")
	}
	tok := t
	tok.CreatedAt = now
	w.meta(&tok.Meta, nil)
	return w.insert(TableTokens, &tok)
}

func (w *writer) tokenDelete(r *TokenDeleteRequest) *Error {
	t, err := w.snap().Token(nil, r.ID)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if t == nil || (r.Tenant != "" && t.Tenant != r.Tenant) {
		return Errorf(KindNotFound, "token %s not found", r.ID)
	}
	return w.delete(TableTokens, t)
}

func (w *writer) tenantCreate(r *TenantCreateRequest) *Error {
	old, err := w.snap().Tenant(nil, r.Tenant.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old != nil {
		return &Error{Kind: KindConflict, Msg: "tenant " + r.Tenant.Name + " already exists", Field: "name"}
	}
	t := r.Tenant.Copy()
	t.CreatedAt = r.Time
	w.meta(&t.Meta, nil)
	return w.insert(TableTenants, t)
}

func (w *writer) tenantDelete(r *TenantDeleteRequest) *Error {
	s := w.snap()
	t, err := s.Tenant(nil, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if t == nil {
		return Errorf(KindNotFound, "tenant %s not found", r.Name)
	}
	apps, err := s.Apps(nil, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if len(apps) > 0 {
		return Errorf(KindConflict, "tenant %s still has %d apps; delete them first", r.Name, len(apps))
	}
	toks, err := s.Tokens(nil, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, tok := range toks {
		if e := w.delete(TableTokens, tok); e != nil {
			return e
		}
	}
	certs, err := s.TenantCerts(nil, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, c := range certs {
		if e := w.delete(TableCerts, c); e != nil {
			return e
		}
	}
	if e := w.deleteTenantRegistries(r.Name); e != nil {
		return e
	}
	if e := w.archiveBilling(t, r.Time); e != nil {
		return e
	}
	return w.delete(TableTenants, t)
}

func (w *writer) poolCreate(r *PoolCreateRequest) *Error {
	old, err := w.snap().Pool(nil, r.Pool.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if old != nil {
		return &Error{Kind: KindConflict, Msg: "pool " + r.Pool.Name + " already exists", Field: "name"}
	}
	p := r.Pool.Copy()
	if e := w.checkProvision(p); e != nil {
		return e
	}
	p.CreatedAt = r.Time
	w.meta(&p.Meta, nil)
	return w.insert(TablePools, p)
}

func (w *writer) poolDelete(r *PoolDeleteRequest) *Error {
	s := w.snap()
	p, err := s.Pool(nil, r.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	if p == nil {
		return Errorf(KindNotFound, "pool %s not found", r.Name)
	}
	if ms, _ := s.Machines(nil, r.Name); len(ms) > 0 {
		return Errorf(KindConflict, "pool %s still has %d machines; shrink it to 0 hosts and wait until they are deleted", r.Name, len(ms))
	}
	apps, err := s.Apps(nil, "")
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, a := range apps {
		for _, name := range append(append([]string(nil), a.Spec.Pools...), a.Spec.FailoverPools...) {
			if name == r.Name {
				return Errorf(KindConflict, "pool %s is used by app %s/%s", r.Name, a.Tenant, a.Name)
			}
		}
	}
	return w.delete(TablePools, p)
}
