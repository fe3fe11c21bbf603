package state

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Golden state: testdata/golden/<version>/ holds a Raft log and a snapshot
// written by that version of the code, and state.json, what the store must
// hold after either is loaded. Every later version must load every one of
// them: an incompatible change of a stored type or command fails here.
//
//	go test ./hub/state -run TestGolden -update            rewrites state.json (review the diff)
//	go test ./hub/state -run TestGolden -golden-new v2     records the current code's log and snapshot
var (
	update    = flag.Bool("update", false, "rewrite the expected state of the golden files")
	goldenNew = flag.String("golden-new", "", "record a new golden version under testdata/golden/NAME")
)

// goldenCommands writes one of every kind of object the store holds.
func goldenCommands() []struct {
	t   MessageType
	req any
} {
	web := spec("web", "web:1")
	web.Pools = []string{"aws-bj"}
	web.Instances = intp(2)
	web.Ports = []Port{{Name: "http", ContainerPort: 8080, Protocol: "http"}}
	web.Health = &Health{HTTP: "/healthz", Interval: Duration(5 * time.Second)}
	web.Failover = &Failover{Mode: FailoverFenced, MaxDisconnect: Duration(30 * time.Second)}
	web.Env = map[string]string{"MODE": "prod"}
	web2 := web
	web2.Image = "web:2"
	job := spec("job", "")
	job.Image = ""
	job.Command = []string{"/bin/job", "--once"}
	autoscaled := spec("api", "api:1")
	autoscaled.Autoscale = &Autoscale{Min: 0, Max: 6, CPU: 70, QPS: 20, Window: Duration(10 * time.Second), ScaleDownDelay: Duration(time.Minute),
		Schedules: []AutoscaleSchedule{{Cron: "0 9 * * 1-5", Timezone: "Asia/Shanghai", Min: 3}}}
	type cmd = struct {
		t   MessageType
		req any
	}
	return []cmd{
		{BootstrapType, &BootstrapRequest{Token: Token{ID: "root", Role: RoleAdmin, SecretHash: "h0"}, Time: t0}},
		{TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "acme", Quota: Quota{Instances: 10, LogBytes: 1 << 30}}, Time: t0}},
		{TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "beta", Pools: []string{"aws-bj"}}, Time: t0}},
		{TokenCreateType, &TokenCreateRequest{Token: Token{ID: "dev1", Role: RoleDeveloper, Tenant: "acme", SecretHash: "h1"}, Time: t0}},
		{PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "aws-bj", Datacenter: "dc1", Region: "cn-north-1", Provider: "aws", Labels: map[string]string{"ssd": "yes"}}, Time: t0}},
		{PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "vs-sh", Datacenter: "dc2"}, Time: t0}},
		{AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web, Create: true, Time: t0}},
		{AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: web2, Time: t0.Add(time.Minute)}},
		{AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: job, Create: true, Time: t0.Add(time.Minute)}},
		{AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 3, Time: t0.Add(2 * time.Minute)}},
		{AgentCACreateType, &AgentCACreateRequest{CA: AgentCA{CertPEM: []byte("cert"), KeyPEM: []byte("key"), Fingerprint: "sha256:00"}, Time: t0}},
		{JoinTokenCreateType, &JoinTokenCreateRequest{Token: JoinToken{ID: "jt1", Pool: "aws-bj", SecretHash: "sh", ExpiresAt: t0.Add(time.Hour), MaxUses: 2}, Time: t0}},
		{HostEnrollType, &HostEnrollRequest{TokenID: "jt1", SecretHash: "sh", Host: Host{ID: "host1", Name: "n1", Inventory: Inventory{CPUs: 2, MemoryBytes: 4 << 30, Drivers: []string{"docker"}, Labels: map[string]string{"ssd": "yes"}}}, Time: t0}},
		{HostEnrollType, &HostEnrollRequest{TokenID: "jt1", SecretHash: "sh", Host: Host{ID: "host2", Name: "n2", Inventory: Inventory{CPUs: 4, MemoryBytes: 8 << 30, Drivers: []string{"docker", "exec"}}}, Time: t0}},
		{PlanApplyType, &PlanApplyRequest{Place: []Instance{
			{ID: "i-1", Tenant: "acme", App: "web", Version: 2, Host: "host1", CPU: 100, Memory: 128},
			{ID: "i-2", Tenant: "acme", App: "web", Version: 2, Host: "host2", CPU: 100, Memory: 128},
		}, Time: t0}},
		{InstanceUpdateType, &InstanceUpdateRequest{Host: "host1", Updates: []InstanceUpdate{{ID: "i-1", State: InstanceRunning, Ready: true, Address: "10.0.0.1:32768"}}, Time: t0.Add(3 * time.Minute)}},
		{HostStateType, &HostStateRequest{ID: "host2", State: HostDown, Disconnected: true, Reason: "no heartbeat for 10s", Time: t0.Add(4 * time.Minute)}},
		{RouteAddType, &RouteAddRequest{Route: Route{ID: "r1", Tenant: "acme", App: "web", Host: "www.acme.test", Path: "/"}, Time: t0}},
		{RouteAddType, &RouteAddRequest{Route: Route{ID: "r2", Tenant: "acme", App: "web", TCP: true, Port: 30001, TargetPort: 8080}, Time: t0}},
		{LogDrainAddType, &LogDrainAddRequest{Drain: LogDrain{ID: "d1", Tenant: "acme", App: "web", URL: "syslog+tls://logs.acme.test:6514"}, Time: t0}},
		{AlertAddType, &AlertAddRequest{Rule: AlertRule{ID: "a1", Tenant: "acme", App: "web", Metric: "cpu", Above: "80%", For: Duration(time.Minute)}, Time: t0}},
		{DrillStartType, &DrillStartRequest{ID: "dr1", Pool: "aws-bj", Mode: DrillCutoff, Time: t0.Add(5 * time.Minute)}},
		{DrillReportType, &DrillReportRequest{ID: "dr1", DetectedMs: 4000, ScheduledMs: 4100, ReadyMs: 6000, RoutedMs: 6100}},
		{DrillEndType, &DrillEndRequest{ID: "dr1", Time: t0.Add(6 * time.Minute)}},
		// v2: a provider account, a provisioned pool, machines in several states.
		{ProviderCreateType, &ProviderCreateRequest{Account: ProviderAccount{Name: "aws1", Type: "aws", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", Insecure: true, SealedCredentials: []byte{1, 0, 0, 0, 7, 'x'}}, Time: t0}},
		{PoolCreateType, &PoolCreateRequest{Pool: Pool{Name: "auto", Datacenter: "dc1", Provider: "aws", Provision: &Provision{Provider: "aws1",
			Template: json.RawMessage(`{"image":"ami-1","instance_type":"t3.small","security_groups":["sg-1","sg-2"]}`), MinHosts: 1, MaxHosts: 4,
			ScaleDownAfter: Duration(10 * time.Minute), BootTimeout: Duration(10 * time.Minute)}}, Time: t0}},
		{MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m1", Pool: "auto"}, Token: JoinToken{ID: "mt1", SecretHash: "ms1", ExpiresAt: t0.Add(time.Hour)}, Time: t0}},
		{MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m2", Pool: "auto"}, Token: JoinToken{ID: "mt2", SecretHash: "ms2"}, Time: t0}},
		{MachineUpdateType, &MachineUpdateRequest{ID: "m2", State: MachineBooting, ProviderID: strp("i-0002"), Time: t0.Add(time.Minute)}},
		{MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m3", Pool: "auto", State: MachineBooting, ProviderID: "i-0003"}, Token: JoinToken{ID: "mt3", SecretHash: "ms3"}, Time: t0}},
		{HostEnrollType, &HostEnrollRequest{TokenID: "mt3", SecretHash: "ms3", MachineID: "m3", Host: Host{ID: "host3", Name: "m3", Inventory: Inventory{CPUs: 2, MemoryBytes: 2 << 30, Drivers: []string{"docker"}}}, Time: t0.Add(2 * time.Minute)}},
		{MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m4", Pool: "auto", State: MachineBooting, ProviderID: "i-0004"}, Token: JoinToken{ID: "mt4", SecretHash: "ms4"}, Time: t0}},
		{MachineUpdateType, &MachineUpdateRequest{ID: "m4", State: MachineDraining, Time: t0.Add(3 * time.Minute)}},
		{MachineCreateType, &MachineCreateRequest{Machine: Machine{ID: "m5", Pool: "auto"}, Token: JoinToken{ID: "mt5", SecretHash: "ms5"}, Time: t0}},
		{MachineUpdateType, &MachineUpdateRequest{ID: "m5", State: MachineFailed, Error: strp("InsufficientInstanceCapacity: no t3.small in us-east-1a"), Time: t0.Add(4 * time.Minute)}},
		// v3-metering: an instance's counted interval, counter batches (one
		// late), a closed hour.
		{PlanApplyType, &PlanApplyRequest{Stop: []InstanceStop{{ID: "i-1", Reason: "replaced"}}, Time: t0.Add(7 * time.Minute)}},
		{UsageCountersType, &UsageCountersRequest{Node: "hub0", Seq: 1, Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0, Requests: 120, EgressBytes: 4096, LogBytes: 300}}, Time: t0.Add(8 * time.Minute)}},
		{CloseHourType, &CloseHourRequest{From: t0, To: t0.Add(time.Hour), Time: t0.Add(61 * time.Minute)}},
		{UsageCountersType, &UsageCountersRequest{Node: "hub1", Seq: 7, Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0, Requests: 3}}, Time: t0.Add(62 * time.Minute)}},
		// v3 (billing): plans, a tenant's plan history, budget and budget state.
		{PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "std", PlanTerms: PlanTerms{Currency: "USD", Prices: map[string]string{"instance_hour": "0.01", "egress_gb": "0.09"},
			Included: map[string]string{"egress_gb": "10"}, MonthlyFee: "5.00"}}, Time: t0}},
		{PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "pro", PlanTerms: PlanTerms{Currency: "USD", Prices: map[string]string{"instance_hour": "0.02"}}}, Time: t0}},
		{PlanCreateType, &PlanCreateRequest{Plan: Plan{Name: "old", PlanTerms: PlanTerms{Currency: "EUR"}}, Time: t0}},
		{PlanDeleteType, &PlanDeleteRequest{Name: "old"}},
		{TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: strp("std"), Time: t0.Add(10 * time.Minute)}},
		{TenantUpdateType, &TenantUpdateRequest{Name: "acme", Plan: strp("pro"), Budget: strp("100.00"), BudgetHardStop: boolp(true), BudgetWebhook: strp("https://hooks.acme.test/budget"), Time: t0.Add(70 * time.Minute)}},
		{BudgetCheckType, &BudgetCheckRequest{Tenant: "acme", Month: "2026-11", Spent: "85.00", Percents: []int{80}, Time: t0.Add(2 * time.Hour)}},
		{BudgetNotifiedType, &BudgetNotifiedRequest{Tenant: "acme", Month: "2026-11", Percent: 80}},
		// v4-day2: the audit log (one entry dropped by its keep), an app
		// restarted, an app stopped.
		{AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{
			{Time: t0, Actor: "bootstrap", ActorID: "root", Role: "admin", Method: "POST", Path: "/v1/tenants", Status: 201, Object: "acme", Node: "hub0"},
			{Time: t0.Add(time.Second), Method: "POST", Path: "/v1/apps", Status: 401, Node: "hub1"},
		}, Keep: 2}},
		{AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{
			{Time: t0.Add(2 * time.Second), Actor: "ci", ActorID: "dev1", Role: "developer", Tenant: "acme", Method: "POST", Path: "/v1/apps/web/stop", Status: 200, Object: "web", Node: "hub0"},
		}, Keep: 2}},
		{AppRestartType, &AppRestartRequest{Tenant: "acme", Name: "job", Time: t0.Add(3 * time.Hour)}},
		{AppStopType, &AppStopRequest{Tenant: "acme", Name: "web", Time: t0.Add(3 * time.Hour)}},
		// v4-billfix: an agent's usage report committed through two nodes
		// (counted once), a tenant with a plan deleted (its billing history
		// kept), a budget webhook's sealed secret.
		{UsageCountersType, &UsageCountersRequest{Node: "hub1", Seq: 8, Reports: []UsageReport{{Host: "host1", Seq: 3,
			Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0.Add(time.Hour), Requests: 9, EgressBytes: 900}}}}, Time: t0.Add(63 * time.Minute)}},
		{UsageCountersType, &UsageCountersRequest{Node: "hub0", Seq: 2, Reports: []UsageReport{{Host: "host1", Seq: 3,
			Counts: []UsageCount{{Tenant: "acme", App: "web", Start: t0.Add(time.Hour), Requests: 9, EgressBytes: 900}}}}, Time: t0.Add(64 * time.Minute)}},
		{TenantCreateType, &TenantCreateRequest{Tenant: Tenant{Name: "gone"}, Time: t0}},
		{TenantUpdateType, &TenantUpdateRequest{Name: "gone", Plan: strp("std"), Time: t0.Add(10 * time.Minute)}},
		{TenantDeleteType, &TenantDeleteRequest{Name: "gone", Time: t0.Add(150 * time.Minute)}},
		{TenantUpdateType, &TenantUpdateRequest{Name: "acme", SealedBudgetSecret: &[]byte{1, 0, 0, 0, 9, 's'}, Time: t0.Add(3 * time.Hour)}},
		// v4-autoscale: an autoscaled app and one of the autoscaler's decisions.
		{AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: autoscaled, Create: true, Time: t0.Add(3 * time.Hour)}},
		{AutoscaleType, &AutoscaleRequest{Tenant: "beta", Name: "api", Instances: 4, Reason: "qps 75.0/s over 10s for 20/s per instance: 4", Time: t0.Add(3*time.Hour + time.Minute)}},
		// v5-registries: tenants' private registry credentials (sealed
		// passwords), one replaced, one removed, one re-sealed.
		{RegistryPutType, &RegistryPutRequest{Registry: Registry{Tenant: "acme", Server: "registry.acme.test:5000", Username: "ci", SealedPassword: []byte{1, 0, 0, 0, 7, 'r'}}, Time: t0.Add(4 * time.Hour)}},
		{RegistryPutType, &RegistryPutRequest{Registry: Registry{Tenant: "acme", Server: "registry.acme.test:5000", Username: "deploy", SealedPassword: []byte{1, 0, 0, 0, 7, 'q'}}, Time: t0.Add(5 * time.Hour)}},
		{RegistryPutType, &RegistryPutRequest{Registry: Registry{Tenant: "beta", Server: "ghcr.io", Username: "b", SealedPassword: []byte{1, 0, 0, 0, 7, 'b'}}, Time: t0.Add(4 * time.Hour)}},
		{RegistryPutType, &RegistryPutRequest{Registry: Registry{Tenant: "beta", Server: "quay.io", Username: "q", SealedPassword: []byte{1, 0, 0, 0, 7, 'x'}}, Time: t0.Add(4 * time.Hour)}},
		{RegistryDeleteType, &RegistryDeleteRequest{Tenant: "beta", Server: "quay.io"}},
		{RegistryResealType, &RegistryResealRequest{Tenant: "beta", Server: "ghcr.io", SealedPassword: []byte{2, 0, 0, 0, 8, 'b'}, ModifyIndex: 62}},
		// v5-secrets: an app's sealed secrets set, merged and one removed
		// (each a new version referencing the secrets' revision).
		{SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "job", Sealed: map[string][]byte{"DB_URL": goldenSealed('d'), "API_KEY": goldenSealed('k')}, Time: t0.Add(4 * time.Hour)}},
		{SecretsSetType, &SecretsSetRequest{Tenant: "acme", App: "job", Sealed: map[string][]byte{"TOKEN": goldenSealed('t')}, Time: t0.Add(4*time.Hour + time.Minute)}},
		{SecretsUnsetType, &SecretsUnsetRequest{Tenant: "acme", App: "job", Names: []string{"API_KEY"}, Time: t0.Add(4*time.Hour + 2*time.Minute)}},
		// v7-audited: writes committed with their audit entries (the inner
		// command binary in one, JSON in the other), the log trimmed to
		// its keep.
		{AuditedType, &AuditedRequest{Command: mustEncodeFor(EntryFormat, AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: spec("cron", "cron:1"), Create: true, Time: t0.Add(5 * time.Hour)}),
			Entry: AuditEntry{Time: t0.Add(5 * time.Hour), Actor: "ci", ActorID: "dev1", Role: "developer", Tenant: "beta", Method: "PUT", Path: "/v1/apps/cron", Status: 201, Object: "cron", Node: "hub0"}, Keep: 2}},
		{AuditedType, &AuditedRequest{Command: mustEncodeFor(1, AppScaleType, &AppScaleRequest{Tenant: "beta", Name: "cron", Instances: 2, Time: t0.Add(5*time.Hour + time.Minute)}),
			Entry: AuditEntry{Time: t0.Add(5*time.Hour + time.Minute), Actor: "ci", ActorID: "dev1", Role: "developer", Tenant: "beta", Method: "POST", Path: "/v1/apps/cron/scale", Status: 200, Object: "cron", Node: "hub1"}, Keep: 2}},
		// v8-hoststates: liveness verdicts of one look in one entry, one
		// of them skipped (its host is gone).
		{HostStatesType, &HostStatesRequest{Time: t0.Add(6 * time.Hour), Changes: []HostStateChange{
			{ID: "host1", State: HostSuspect, Reason: "no heartbeat for 4s", From: HostReady},
			{ID: "host9", State: HostSuspect, Reason: "no heartbeat for 4s", From: HostReady},
			{ID: "host2", State: HostReady, Reason: "heartbeats resumed", From: HostDown},
		}}},
	}
}

// mustEncodeFor is EncodeFor for fixed test commands.
func mustEncodeFor(f int, t MessageType, req any) []byte {
	b, err := EncodeFor(f, t, req)
	if err != nil {
		panic(err)
	}
	return b
}

// goldenSealed stands for a sealed value (the store never opens one).
func goldenSealed(c byte) []byte {
	b := bytes.Repeat([]byte{c}, SealOverhead+8)
	b[0] = 1
	return b
}

// TestGolden loads every recorded log and snapshot with today's code.
func TestGolden(t *testing.T) {
	if *goldenNew != "" {
		recordGolden(t, filepath.Join("testdata", "golden", *goldenNew))
	}
	dirs, err := filepath.Glob(filepath.Join("testdata", "golden", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden versions under testdata/golden: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			fromLog := newHarness(t)
			replayLog(t, fromLog, filepath.Join(dir, "log.txt"))
			fromSnap := newHarness(t)
			f, err := os.Open(filepath.Join(dir, "snapshot.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if err := fromSnap.fsm.Restore(f); err != nil {
				t.Fatalf("restore the %s snapshot: %v", filepath.Base(dir), err)
			}
			got := stateJSON(t, fromLog.fsm.Store())
			if snap := stateJSON(t, fromSnap.fsm.Store()); !bytes.Equal(got, snap) {
				t.Fatalf("the log and the snapshot of %s load to different states:\nlog:\n%s\nsnapshot:\n%s", dir, got, snap)
			}
			want := filepath.Join(dir, "state.json")
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, exp) {
				t.Fatalf("%s loads to a different state than %s (a stored type or command changed incompatibly; if on purpose, -update and review):\n%s", dir, want, got)
			}
		})
	}
}

// recordGolden writes the current code's log, snapshot and state.
func recordGolden(t *testing.T, dir string) {
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists: golden versions are never rewritten", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	var log bytes.Buffer
	for _, c := range goldenCommands() {
		b, err := EncodeFor(EntryFormat, c.t, c.req)
		if err != nil {
			t.Fatal(err)
		}
		h.must(c.t, c.req)
		if MessageType(b[0]) == BinaryMarker {
			fmt.Fprintf(&log, "%d %x\n", b[0], b[1:])
		} else {
			fmt.Fprintf(&log, "%d %s", b[0], b[1:]) // the JSON ends with a newline
		}
	}
	var snap bytes.Buffer
	snapshotTo(t, h.fsm, &snap)
	for name, b := range map[string][]byte{"log.txt": log.Bytes(), "snapshot.jsonl": snap.Bytes(), "state.json": stateJSON(t, h.fsm.Store())} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// replayLog applies a golden log: one entry a line, "TYPE JSON" for the
// JSON form, or "127 HEX" for the binary form (BinaryMarker, then the rest
// of the entry in hex).
func replayLog(t *testing.T, h *harness, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		typ, body, ok := strings.Cut(sc.Text(), " ")
		mt, err := strconv.ParseUint(typ, 10, 8)
		if !ok || err != nil {
			t.Fatalf("%s:%d: not TYPE JSON", path, n)
		}
		h.index++
		entry := append([]byte{byte(mt)}, body...)
		if MessageType(mt) == BinaryMarker {
			rest, err := hex.DecodeString(body)
			if err != nil {
				t.Fatalf("%s:%d: binary entry not in hex: %v", path, n, err)
			}
			entry = append([]byte{byte(mt)}, rest...)
		}
		if r := h.fsm.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: entry}); r != nil {
			t.Fatalf("%s:%d: apply: %v", path, n, r)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// stateJSON is every row of every table as indented JSON.
func stateJSON(t *testing.T, s *Store) []byte {
	t.Helper()
	b, err := json.MarshalIndent(dump(t, s), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}
