package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// TableDeployments holds each app's history: every change of its current
// version or of its instance count, newest last.
const TableDeployments = "deployments"

// historyLimit is how many entries an app keeps; older ones are dropped.
const historyLimit = 100

// Kinds of history entries.
const (
	DeployCreate   = "create"   // the app's first version
	DeployUpdate   = "update"   // a new version, rolled out with the strategy
	DeployCanary   = "canary"   // a new version as canary, waiting for promote or abort
	DeployPromote  = "promote"  // the canary became the app
	DeployAbort    = "abort"    // the canary was dropped
	DeployRollback = "rollback" // an earlier version made current by a user
	DeployRevert   = "revert"   // a failed update undone by auto_revert
	DeployScale    = "scale"    // the instance count changed
	DeployFailback = "failback" // instances asked back from failover pools
)

// Deployment is one entry of an app's history.
type Deployment struct {
	Tenant    string
	App       string
	Index     uint64 // Raft index of the change: orders the history
	Kind      string
	Version   int // the app's current version after the change
	From      int // its version before (0 for create)
	Instances int // desired instances after the change
	Strategy  string
	Message   string
	Time      time.Time
}

func deploymentSchema() *memdb.TableSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	return &memdb.TableSchema{Name: TableDeployments, Indexes: map[string]*memdb.IndexSchema{
		// An app's history is a prefix of "id", in Index order (big
		// endian): no second index for every entry to update.
		"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
			str("Tenant"), str("App"), &memdb.UintFieldIndex{Field: "Index"}}}},
	}}
}

// History returns an app's history, oldest first.
func (s *Snapshot) History(ws memdb.WatchSet, tenant, app string) ([]*Deployment, error) {
	return list[Deployment](s, ws, TableDeployments, "id_prefix", appPrefix(tenant, app)...)
}

// record appends an entry to the history of app (as written by this
// command) and drops the oldest beyond historyLimit.
func (w *writer) record(app *App, kind string, from int, msg string, at time.Time) *Error {
	d := &Deployment{Tenant: app.Tenant, App: app.Name, Index: w.index, Kind: kind, Version: app.Version, From: from,
		Instances: *app.Spec.Instances, Message: msg, Time: at}
	if st := app.Spec.Strategy; st != nil && st.Type != "" {
		d.Strategy = st.Type
	} else if kind == DeployUpdate || kind == DeployCreate {
		d.Strategy = "rolling"
	}
	if e := w.insert(TableDeployments, d); e != nil {
		return e
	}
	// Counted rather than listed: an app at the limit (one that is
	// scaled often) drops its oldest entry on every record.
	it, err := w.txn.Get(TableDeployments, "id_prefix", appPrefix(app.Tenant, app.Name)...)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	n, oldest := 0, it.Next()
	for obj := oldest; obj != nil; obj = it.Next() {
		n++
	}
	if n == historyLimit+1 {
		return w.delete(TableDeployments, oldest)
	}
	if n <= historyLimit {
		return nil
	}
	old, err := w.snap().History(nil, app.Tenant, app.Name)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for i := 0; i < len(old)-historyLimit; i++ {
		if e := w.delete(TableDeployments, old[i]); e != nil {
			return e
		}
	}
	return nil
}

// appPrefix is the "id_prefix" argument list that selects an app's rows
// in a table whose "id" index begins with its Tenant and App strings. The
// name's terminator (memdb ends every indexed string with a NUL) is part of
// the prefix so that app "web" does not also select app "web2".
func appPrefix(tenant, app string) []any {
	return []any{tenant, app + "\x00"}
}

// dropHistory deletes an app's history with the app.
func (w *writer) dropHistory(tenant, app string) *Error {
	old, err := w.snap().History(nil, tenant, app)
	if err != nil {
		return Errorf(KindInternal, "%v", err)
	}
	for _, d := range old {
		if e := w.delete(TableDeployments, d); e != nil {
			return e
		}
	}
	return nil
}
