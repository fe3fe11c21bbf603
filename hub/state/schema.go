package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Table names, also used to ask for a table's index.
const (
	TableTenants     = "tenants"
	TableTokens      = "tokens"
	TablePools       = "pools"
	TableApps        = "apps"
	TableAppVersions = "app_versions"
	TableAgentCA     = "agent_ca"
	TableJoinTokens  = "join_tokens"
	TableHosts       = "hosts"
	TableEvents      = "events"
	tableIndex       = "index"
	tableMeta        = "meta"
)

// IndexEntry records the last Raft index that changed a table.
type IndexEntry struct {
	Table string
	Index uint64
}

// metaEntry is the singleton row with cluster-wide flags.
type metaEntry struct {
	ID             string // always "meta"
	Bootstrapped   bool
	BootstrapIndex uint64
}

func schema() *memdb.DBSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	routes, certs := routeSchemas()
	drains, alerts := observeSchemas()
	tables := map[string]*memdb.TableSchema{
		TableLogDrains: drains,
		TableAlerts:    alerts,
		TableRoutes:    routes,
		TableCerts:     certs,
		TableDrills:    drillSchema(),
		TableProviders: providerSchema(),
		TableMachines:  machineSchema(),
		TablePlans:     planSchema(),
		TableAudit:     auditSchema(),
		// Tenants, apps and the index table are read and written by every
		// app write: their "id" indexes read fields without reflection.
		TableTenants: {Name: TableTenants, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: stringIndex(func(o *Tenant) string { return o.Name })},
		}},
		TableTokens: {Name: TableTokens, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: str("ID")},
			"hash":   {Name: "hash", Unique: true, Indexer: str("SecretHash")},
			"tenant": {Name: "tenant", AllowMissing: true, Indexer: str("Tenant")},
		}},
		TablePools: {Name: TablePools, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("Name")},
		}},
		TableApps: {Name: TableApps, Indexes: map[string]*memdb.IndexSchema{
			// A tenant's apps are a prefix of "id" (Snapshot.Apps): no
			// "tenant" index, which every app write would have to update.
			// No index by modify index: the planner finds the apps written
			// since its last round in the log of changes (ChangedSince),
			// where an index cost every app write a delete and an insert.
			"id": {Name: "id", Unique: true, Indexer: stringPairIndex(func(o *App) string { return o.Tenant }, func(o *App) string { return o.Name })},
		}},
		TableAppVersions: {Name: TableAppVersions, Indexes: map[string]*memdb.IndexSchema{
			// An app's versions are a prefix of "id", oldest first.
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				str("Tenant"), str("App"), &memdb.IntFieldIndex{Field: "Version"}}}},
		}},
		TableAgentCA: {Name: TableAgentCA, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
		}},
		TableJoinTokens: {Name: TableJoinTokens, Indexes: map[string]*memdb.IndexSchema{
			"id":   {Name: "id", Unique: true, Indexer: str("ID")},
			"pool": {Name: "pool", Indexer: str("Pool")},
		}},
		// Every placement rewrites its host (assignment version and
		// allocation): no reflection either.
		TableHosts: {Name: TableHosts, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: stringIndex(func(o *Host) string { return o.ID })},
			// A pool's hosts are a prefix of "pool_name" (PoolHosts): no
			// "pool" index, which every write of a host (each placement
			// and stop on it) would have to update.
			"pool_name": {Name: "pool_name", Unique: true, Indexer: stringPairIndex(func(o *Host) string { return o.Pool }, func(o *Host) string { return o.Name })},
		}},
		TableEvents: {Name: TableEvents, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.UintFieldIndex{Field: "Index"}, &memdb.IntFieldIndex{Field: "Seq"}}}},
		}},
		TableDeployments: deploymentSchema(),
		tableIndex: {Name: tableIndex, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: stringIndex(func(o *IndexEntry) string { return o.Table })},
		}},
		tableMeta: {Name: tableMeta, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
		}},
	}
	tables[TableRegistries] = registrySchema()
	tables[tableWatch] = watchSchema()
	tables[tableChanges] = changesSchema()
	for name, t := range instanceSchemas() {
		tables[name] = t
	}
	for name, t := range usageSchemas() {
		tables[name] = t
	}
	return &memdb.DBSchema{Tables: tables}
}

// tables lists the object tables in snapshot order.
var objectTables = []string{TableTenants, TableTokens, TablePools, TableApps, TableAppVersions, TableAgentCA, TableJoinTokens, TableHosts, TableEvents, TableInstances, TableDeployments, TableRoutes, TableCerts, TableDrills, TableLogDrains, TableAlerts, TableProviders, TableMachines, TableUsage, TableUsageSegments, TableUsageCounters, TableUsageBatches, TablePlans, TableUsageHosts, TableBillingTenants, TableAudit, TableRegistries}

func newDB() (*memdb.MemDB, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("state schema: %w", err)
	}
	return db, nil
}
