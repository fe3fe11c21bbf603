package api

import (
	"net/http"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// routeDocs annotates every route for GET /v1/openapi.json: one line per
// route, {pattern, success status, summary, request type, answer type,
// its own query parameters, example}. A route added to the server needs
// its line here (TestOpenAPICoversRoutes names the missing ones).
//
// The examples run in this order against a fresh cluster (the tests
// replay them): bootstrap, then tenant acme, pool aws-bj and app web.
func routeDocs() []routeDoc {
	type A = apitypes.App
	const ok, created, none = http.StatusOK, http.StatusCreated, http.StatusNoContent
	web := apitypes.AppSpec{Name: "web", Image: "web:1", Instances: intp(0)}
	return []routeDoc{
		{"GET /v1/status", ok, "This node, the leader, the peers, the Raft index", nil, apitypes.Status{}, "", ex("/v1/status", nil)},
		{"POST /v1/bootstrap", ok, "Hand out the first admin token (once per cluster)", nil, apitypes.BootstrapResponse{}, "", ex("/v1/bootstrap", nil)},
		{"GET /v1/openapi.json", ok, "This document", nil, map[string]any{}, "", ex("/v1/openapi.json", nil)},

		{"POST /v1/tenants", created, "Create a tenant (admin)", apitypes.TenantRequest{}, apitypes.Tenant{}, "", ex("/v1/tenants", apitypes.TenantRequest{Name: "acme"})},
		{"GET /v1/tenants", ok, "List tenants (admin)", nil, []apitypes.Tenant{}, "", ex("/v1/tenants", nil)},
		{"GET /v1/tenants/{name}", ok, "Read a tenant", nil, apitypes.Tenant{}, "", ex("/v1/tenants/acme", nil)},
		{"DELETE /v1/tenants/{name}", none, "Delete a tenant without apps", nil, nil, "", nil},

		{"POST /v1/tokens", created, "Create an API token (shown once)", apitypes.TokenRequest{}, apitypes.Token{}, "", ex("/v1/tokens", apitypes.TokenRequest{Name: "ci", Role: apitypes.RoleDeveloper, Tenant: "acme"})},
		{"GET /v1/tokens", ok, "List tokens", nil, []apitypes.Token{}, "", ex("/v1/tokens", nil)},
		{"GET /v1/tokens/self", ok, "Describe the caller's token", nil, apitypes.Token{}, "", ex("/v1/tokens/self", nil)},
		{"GET /v1/tokens/{id}", ok, "Read a token", nil, apitypes.Token{}, "", nil},
		{"DELETE /v1/tokens/{id}", none, "Revoke a token", nil, nil, "", nil},

		{"POST /v1/pools", created, "Create a pool (admin)", apitypes.PoolRequest{}, apitypes.Pool{}, "", ex("/v1/pools", apitypes.PoolRequest{Name: "aws-bj", Datacenter: "dc1"})},
		{"GET /v1/pools", ok, "List pools", nil, []apitypes.Pool{}, "", ex("/v1/pools", nil)},
		{"GET /v1/pools/{name}", ok, "Read a pool with its capacity, usage, hosts and machines", nil, apitypes.Pool{}, "", ex("/v1/pools/aws-bj", nil)},
		{"PUT /v1/pools/{name}", ok, "Replace a pool (admin)", apitypes.PoolRequest{}, apitypes.Pool{}, "", nil},
		{"DELETE /v1/pools/{name}", none, "Delete a pool no app names", nil, nil, "", nil},

		{"POST /v1/providers", created, "Add a provider account (admin; credentials checked, then sealed)", apitypes.ProviderRequest{}, apitypes.Provider{}, "", nil},
		{"GET /v1/providers", ok, "List provider accounts", nil, []apitypes.Provider{}, "", ex("/v1/providers", nil)},
		{"GET /v1/providers/{name}", ok, "Read a provider account", nil, apitypes.Provider{}, "", nil},
		{"PUT /v1/providers/{name}", ok, "Replace a provider account", apitypes.ProviderRequest{}, apitypes.Provider{}, "", nil},
		{"DELETE /v1/providers/{name}", none, "Delete a provider account no pool uses", nil, nil, "", nil},
		{"POST /v1/registries", created, "Add or replace the tenant's credentials for a private registry (password sealed, never shown)", apitypes.RegistryRequest{}, apitypes.Registry{}, "", ex("/v1/registries?tenant=acme", apitypes.RegistryRequest{Server: "registry.acme.test:5000", Username: "ci", Password: "example-password"})},
		{"GET /v1/registries", ok, "List the tenant's private registries (server and username)", nil, []apitypes.Registry{}, "", ex("/v1/registries?tenant=acme", nil)},
		{"DELETE /v1/registries/{server}", none, "Remove the tenant's credentials for a registry", nil, nil, "", nil},
		{"GET /v1/machines", ok, "List provisioned machines", nil, []apitypes.Machine{}, "pool", ex("/v1/machines", nil)},

		{"POST /v1/apps", created, "Create an app", apitypes.AppSpec{}, A{}, "", ex("/v1/apps?tenant=acme", web)},
		{"GET /v1/apps", ok, "List apps", nil, []A{}, "", ex("/v1/apps?tenant=acme", nil)},
		{"GET /v1/apps/{name}", ok, "Read an app", nil, A{}, "", ex("/v1/apps/web?tenant=acme", nil)},
		{"PUT /v1/apps/{name}", ok, "Create or update an app (201 when created)", apitypes.AppSpec{}, A{}, "cas", ex("/v1/apps/web?tenant=acme", web)},
		{"POST /v1/apps/{name}/scale", ok, "Set the desired instance count", apitypes.ScaleRequest{}, A{}, "", ex("/v1/apps/web/scale?tenant=acme", apitypes.ScaleRequest{Instances: intp(1)})},
		{"GET /v1/apps/{name}/autoscale", ok, "What the autoscaler sees of an app and last decided", nil, apitypes.AutoscaleStatus{}, "", ex("/v1/apps/web/autoscale?tenant=acme", nil)},
		{"PUT /v1/apps/{name}/autoscale", ok, "Set an app's autoscaling policy", apitypes.Autoscale{}, A{}, "", nil},
		{"DELETE /v1/apps/{name}/autoscale", ok, "Remove an app's autoscaling policy (the count stays at the last decision)", nil, A{}, "", nil},
		{"PUT /v1/apps/{name}/secrets", ok, "Merge secrets into an app (sealed at rest; a change rolls the app out as a new version)", apitypes.SecretsRequest{}, apitypes.Secrets{}, "", ex("/v1/apps/web/secrets?tenant=acme", apitypes.SecretsRequest{"DB_PASSWORD": "example"})},
		{"GET /v1/apps/{name}/secrets", ok, "List an app's secrets' names (never their values)", nil, apitypes.Secrets{}, "", ex("/v1/apps/web/secrets?tenant=acme", nil)},
		{"DELETE /v1/apps/{name}/secrets/{key}", none, "Remove one secret of an app (a new version)", nil, nil, "", nil},
		{"POST /v1/apps/{name}/restart", ok, "Replace every instance (a new version with the same spec)", nil, A{}, "", ex("/v1/apps/web/restart?tenant=acme", nil)},
		{"POST /v1/apps/{name}/stop", ok, "Run no instance, remembering the count", nil, A{}, "", ex("/v1/apps/web/stop?tenant=acme", nil)},
		{"POST /v1/apps/{name}/start", ok, "Run the remembered count again", nil, A{}, "", ex("/v1/apps/web/start?tenant=acme", nil)},
		{"POST /v1/apps/{name}/rollback", ok, "Make an earlier version current", apitypes.RollbackRequest{}, A{}, "", ex("/v1/apps/web/rollback?tenant=acme", apitypes.RollbackRequest{Version: 1})},
		{"POST /v1/apps/{name}/promote", ok, "Roll a canary out to every instance", nil, A{}, "", nil},
		{"POST /v1/apps/{name}/abort", ok, "Drop a canary", nil, A{}, "", nil},
		{"POST /v1/apps/{name}/failback", ok, "Move instances back from failover pools", nil, A{}, "", nil},
		{"GET /v1/apps/{name}/versions", ok, "List an app's versions", nil, []apitypes.AppVersion{}, "", ex("/v1/apps/web/versions?tenant=acme", nil)},
		{"GET /v1/apps/{name}/history", ok, "List an app's deployments, restarts and scalings", nil, []apitypes.Deployment{}, "", ex("/v1/apps/web/history?tenant=acme", nil)},
		{"GET /v1/apps/{name}/instances", ok, "List an app's instances", nil, []apitypes.Instance{}, "", ex("/v1/apps/web/instances?tenant=acme", nil)},
		{"GET /v1/apps/{name}/exec", http.StatusSwitchingProtocols, "Run a command in an instance (developer and above; audited): a WebSocket, subprotocol " + apitypes.ExecProtocol + ", whose binary messages start with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final status (JSON exit_code, error), 4 a resize (JSON cols, rows), 5 end of stdin", nil, apitypes.ExecStatus{}, "cmd,instance,tty,stdin,cols,rows", nil},
		{"GET /v1/apps/{name}/routes", ok, "List an app's routes", nil, []apitypes.Route{}, "", ex("/v1/apps/web/routes?tenant=acme", nil)},
		{"GET /v1/apps/{name}/stats", ok, "An app's router counts per second", nil, []apitypes.TrafficSecond{}, "since", ex("/v1/apps/web/stats?tenant=acme", nil)},
		{"GET /v1/apps/{name}/metrics", ok, "An app's metric series", nil, []apitypes.MetricSeries{}, "from,to,step", ex("/v1/apps/web/metrics?tenant=acme", nil)},
		{"GET /v1/apps/{name}/logs", ok, "An app's log lines (NDJSON of {time, instance, stream, seq, line})", nil, media("application/x-ndjson"), "since,follow,grep,instance,limit", nil},
		{"POST /v1/apps/{name}/log-drains", created, "Add a log drain", apitypes.LogDrainRequest{}, apitypes.LogDrain{}, "", nil},
		{"GET /v1/apps/{name}/log-drains", ok, "List an app's log drains", nil, []apitypes.LogDrain{}, "", ex("/v1/apps/web/log-drains?tenant=acme", nil)},
		{"DELETE /v1/apps/{name}/log-drains/{id}", none, "Delete a log drain", nil, nil, "", nil},
		{"POST /v1/apps/{name}/routes", created, "Add a route", apitypes.RouteRequest{}, apitypes.Route{}, "", nil},
		{"DELETE /v1/apps/{name}/routes/{id}", none, "Delete a route", nil, nil, "", nil},
		{"DELETE /v1/apps/{name}", none, "Delete an app", nil, nil, "cas", nil},
		{"GET /v1/usage", ok, "Metered usage per app and period", nil, []apitypes.UsageRow{}, "from,to,app,group", ex("/v1/usage?tenant=acme", nil)},

		{"POST /v1/alerts", created, "Add an alert rule", apitypes.AlertRule{}, apitypes.AlertRule{}, "", nil},
		{"GET /v1/alerts", ok, "List alert rules", nil, []apitypes.AlertRule{}, "", ex("/v1/alerts?tenant=acme", nil)},
		{"DELETE /v1/alerts/{id}", none, "Delete an alert rule", nil, nil, "", nil},

		{"GET /v1/routes", ok, "List routes", nil, []apitypes.Route{}, "", ex("/v1/routes?tenant=acme", nil)},
		{"GET /v1/certs", ok, "List TLS certificates", nil, []apitypes.Cert{}, "", ex("/v1/certs?tenant=acme", nil)},
		{"POST /v1/certs", created, "Add a TLS certificate", apitypes.CertRequest{}, apitypes.Cert{}, "", nil},
		{"DELETE /v1/certs/{domain}", none, "Delete a TLS certificate", nil, nil, "", nil},

		{"POST /v1/drills", created, "Start a drill", apitypes.DrillRequest{}, apitypes.Drill{}, "", nil},
		{"GET /v1/drills", ok, "List drills", nil, []apitypes.Drill{}, "", ex("/v1/drills", nil)},
		{"GET /v1/drills/{id}", ok, "Read a drill's measurements", nil, apitypes.Drill{}, "", nil},
		{"POST /v1/drills/{id}/end", ok, "End a drill", nil, apitypes.Drill{}, "", nil},

		{"GET /v1/join-tokens", ok, "List join tokens (admin)", nil, []apitypes.JoinToken{}, "", ex("/v1/join-tokens", nil)},
		{"POST /v1/join-tokens", created, "Create a join token for a pool (admin)", apitypes.JoinTokenRequest{}, apitypes.JoinToken{}, "", nil},
		{"DELETE /v1/join-tokens/{id}", none, "Revoke a join token", nil, nil, "", nil},

		{"GET /v1/hosts", ok, "List hosts", nil, []apitypes.Host{}, "pool", ex("/v1/hosts", nil)},
		{"GET /v1/hosts/{id}", ok, "Read a host", nil, apitypes.Host{}, "", nil},
		{"GET /v1/hosts/{id}/metrics", ok, "A host's metric series", nil, []apitypes.MetricSeries{}, "from,to,step", nil},
		{"POST /v1/hosts/{id}/drain", ok, "Mark a host draining (admin)", nil, apitypes.Host{}, "", nil},
		{"POST /v1/hosts/{id}/undrain", ok, "Make a draining or drained host ready again (admin)", nil, apitypes.Host{}, "", nil},
		{"DELETE /v1/hosts/{id}", none, "Remove a host (202 with the machine when it was provisioned)", nil, nil, "", nil},
		{"GET /v1/events", ok, "List cluster events", nil, []apitypes.Event{}, "after", ex("/v1/events", nil)},

		{"POST /v1/plans", created, "Create a price plan (admin)", apitypes.PlanRequest{}, apitypes.Plan{}, "", ex("/v1/plans", apitypes.PlanRequest{Name: "std", Currency: "USD", Prices: map[string]string{"instance_hour": "0.01"}})},
		{"GET /v1/plans", ok, "List price plans", nil, []apitypes.Plan{}, "", ex("/v1/plans", nil)},
		{"GET /v1/plans/{name}", ok, "Read a price plan", nil, apitypes.Plan{}, "", ex("/v1/plans/std", nil)},
		{"PUT /v1/tenants/{name}", ok, "Change a tenant's plan or budget (partial update)", apitypes.TenantUpdate{}, apitypes.Tenant{}, "", ex("/v1/tenants/acme", apitypes.TenantUpdate{Plan: strp("std")})},
		{"DELETE /v1/plans/{name}", none, "Delete a price plan", nil, nil, "", nil},
		{"GET /v1/bills", ok, "A tenant's daily bills", nil, []apitypes.Bill{}, "from,to", ex("/v1/bills?tenant=acme", nil)},
		{"GET /v1/invoices", ok, "A month's invoice (a tenant's) or invoices (every tenant's); format=csv|html for CSV or HTML", nil, oneOf{apitypes.Invoice{}, []apitypes.Invoice{}}, "month,format", ex("/v1/invoices?tenant=acme", nil)},

		{"GET /v1/audit", ok, "The audit log of mutating requests (admin: all or ?tenant=; tenant-admin: its tenant's)", nil, []apitypes.AuditEntry{}, "since,limit", ex("/v1/audit", nil)},
	}
}

func intp(n int) *int       { return &n }
func strp(s string) *string { return &s }
