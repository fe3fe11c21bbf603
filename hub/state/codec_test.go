package state

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"
)

// fullSpec sets every field of an app spec.
func fullSpec() AppSpec {
	s := spec("web", "web:1")
	s.Command = []string{"/bin/web", "", "--port=8080"}
	s.Env = map[string]string{"MODE": "prod", "": "empty key", "EMPTY": "", "UNICODE": "héllo \u2028 <&>"}
	s.Instances = intp(0)
	s.CPU, s.Memory = 250, -1
	s.Ports = []Port{{Name: "http", ContainerPort: 8080, Protocol: "http", HostPort: 30080}, {}}
	s.Health = &Health{HTTP: "/healthz", TCP: 81, Command: []string{"check", ""}, Port: 8080, Interval: Duration(5 * time.Second), Timeout: Duration(-1)}
	s.Pools = []string{"aws-bj", ""}
	s.Spread = "zone"
	s.Constraints = []string{"label.disk=ssd"}
	s.FailoverPools = []string{"vs-sh"}
	s.Failover = &Failover{Mode: FailoverFenced, MaxDisconnect: Duration(math.MaxInt64), Failback: "auto", FailbackHold: Duration(math.MinInt64)}
	s.Strategy = &Strategy{Type: "canary", MaxSurge: 2, MaxUnavailable: 1, Canary: 1, Weight: 10, AutoRevert: true, HealthDeadline: Duration(time.Minute)}
	s.Autoscale = &Autoscale{Min: 1, Max: 9, CPU: 70, Memory: 80, QPS: 20, Window: Duration(10 * time.Second), ScaleDownDelay: Duration(time.Minute),
		Schedules: []AutoscaleSchedule{{Cron: "0 9 * * 1-5", Timezone: "Asia/Shanghai", Min: 3, Max: 5}, {}}}
	s.Secrets = 4
	return s
}

// binaryCases are requests the binary form carries.
func binaryCases() []struct {
	name string
	t    MessageType
	req  any
} {
	cas0, cas := uint64(0), uint64(math.MaxUint64)
	empty := AppSpec{Health: &Health{}, Failover: &Failover{}, Strategy: &Strategy{}, Autoscale: &Autoscale{}, Env: map[string]string{}, Command: []string{}}
	return []struct {
		name string
		t    MessageType
		req  any
	}{
		{"upsert, every field", AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: fullSpec(), CAS: &cas, Create: true, Update: true, Time: t0.Add(123456789 * time.Nanosecond)}},
		{"upsert, zero values", AppUpsertType, &AppUpsertRequest{}},
		{"upsert, cas 0, empty nested values", AppUpsertType, &AppUpsertRequest{Tenant: "t", Spec: empty, CAS: &cas0, Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{"upsert, before 1970", AppUpsertType, &AppUpsertRequest{Tenant: "t", Spec: spec("a", "b"), Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}},
		{"upsert, ignore flag", AppUpsertType | IgnoreUnknownTypeFlag, &AppUpsertRequest{Tenant: "t", Spec: spec("a", "b")}},
		{"audit", AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{
			{Seq: 1, Index: math.MaxUint64, Time: t0, Actor: "ci", ActorID: "dev1", Role: "developer", Tenant: "acme", Method: "PUT", Path: "/v1/apps/web", Status: 200, Object: "web", Node: "hub0"},
			{Method: "POST", Path: "/v1/apps", Status: 401},
		}, Keep: 10000}},
		{"audit, no entries", AuditRecordType, &AuditRecordRequest{Keep: -1}},
		{"audited, a binary upsert", AuditedType, &AuditedRequest{Command: mustEncodeFor(EntryFormat, AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("web", "web:1"), Time: t0}),
			Entry: AuditEntry{Time: t0, Actor: "ci", ActorID: "dev1", Role: "developer", Tenant: "acme", Method: "PUT", Path: "/v1/apps/web", Status: 201, Object: "web", Node: "hub0"}, Keep: 500}},
		{"audited, a JSON scale", AuditedType, &AuditedRequest{Command: mustEncodeFor(1, AppScaleType, &AppScaleRequest{Tenant: "acme", Name: "web", Instances: 2}),
			Entry: AuditEntry{Method: "POST", Path: "/v1/apps/web/scale", Status: 200}}},
		{"audited, zero values", AuditedType, &AuditedRequest{}},
	}
}

// jsonRoundTrip is what the FSM sees of req when it travels as JSON.
func jsonRoundTrip(t testing.TB, mt MessageType, req any) any {
	t.Helper()
	b, err := encodeJSON(mt, req)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := Decode(b)
	if err != nil {
		t.Fatalf("decode the JSON form: %v", err)
	}
	return got
}

// TestBinaryMatchesJSON: a request of a type with a binary form is
// encoded in it, and decodes to exactly what its JSON form decodes to.
func TestBinaryMatchesJSON(t *testing.T) {
	for _, c := range binaryCases() {
		t.Run(c.name, func(t *testing.T) {
			b, err := EncodeBinary(c.t, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if MessageType(b[0]) != BinaryMarker || MessageType(b[1]) != c.t {
				t.Fatalf("entry begins %v, want the binary form of type %d", b[:2], c.t)
			}
			mt, got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if mt != c.t&^IgnoreUnknownTypeFlag {
				t.Fatalf("type %d, want %d", mt, c.t&^IgnoreUnknownTypeFlag)
			}
			if want := jsonRoundTrip(t, c.t, c.req); !reflect.DeepEqual(got, want) {
				t.Fatalf("binary decodes to\n%#v\nJSON to\n%#v", got, want)
			}
		})
	}
}

// TestEncodeFallsBackToJSON: what JSON would change (or refuse) is
// written as JSON, so the FSM sees what it always saw.
func TestEncodeFallsBackToJSON(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	for _, c := range []struct {
		name string
		t    MessageType
		req  any
	}{
		{"invalid UTF-8 in a name", AppUpsertType, &AppUpsertRequest{Tenant: "a\xffb", Spec: spec("web", "web:1")}},
		{"invalid UTF-8 in an env key", AppUpsertType, &AppUpsertRequest{Tenant: "a", Spec: AppSpec{Name: "w", Env: map[string]string{"\xfe": "v"}}}},
		{"invalid UTF-8 in a list", AppUpsertType, &AppUpsertRequest{Tenant: "a", Spec: AppSpec{Name: "w", Command: []string{"ok", "\xc3"}}}},
		{"invalid UTF-8 in an audit path", AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{{Path: "/v1/apps/\xff"}}}},
		{"a time with a zone", AppUpsertType, &AppUpsertRequest{Tenant: "a", Time: t0.In(shanghai)}},
		{"an empty list of entries", AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{}}},
		{"an empty audited command", AuditedType, &AuditedRequest{Command: []byte{}}},
		{"invalid UTF-8 in an audited entry", AuditedType, &AuditedRequest{Command: []byte{1}, Entry: AuditEntry{Object: "\xff"}}},
		{"another type", AppScaleType, &AppScaleRequest{Tenant: "a", Name: "w", Instances: 2}},
		{"a type that does not match the request", AppScaleType, &AppUpsertRequest{Tenant: "a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := EncodeBinary(c.t, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if MessageType(b[0]) != c.t || b[1] != '{' {
				t.Fatalf("entry begins %q, want the JSON form", b[:2])
			}
		})
	}
	// A year JSON cannot write fails as it always did.
	if _, err := EncodeBinary(AppUpsertType, &AppUpsertRequest{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Fatal("a time in year 10000 encoded")
	}
}

// TestDecodeBinary: malformed binary entries are errors; fields a newer
// writer added are skipped; unknown binary types with the ignore flag are
// skipped by the FSM, without it refused.
func TestDecodeBinary(t *testing.T) {
	good, err := EncodeBinary(AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: spec("web", "web:1"), Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := Decode(good)
	withUnknown := protowire.AppendTag(append([]byte(nil), good...), 99, protowire.VarintType)
	withUnknown = protowire.AppendVarint(withUnknown, 7)
	withUnknown = protowire.AppendTag(withUnknown, 98, protowire.Fixed32Type)
	withUnknown = protowire.AppendFixed32(withUnknown, 7)
	if _, got, err := Decode(withUnknown); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("unknown fields: %v, %#v", err, got)
	}

	entry := func(t MessageType, fields ...[]byte) []byte {
		b := []byte{byte(BinaryMarker), byte(t)}
		for _, f := range fields {
			b = append(b, f...)
		}
		return b
	}
	field := func(n protowire.Number, typ protowire.Type, v any) []byte {
		b := protowire.AppendTag(nil, n, typ)
		switch v := v.(type) {
		case uint64:
			return protowire.AppendVarint(b, v)
		case []byte:
			return protowire.AppendBytes(b, v)
		}
		panic("field value")
	}
	timeMsg := func(sec int64, nsec uint64) []byte {
		return append(field(1, protowire.VarintType, protowire.EncodeZigZag(sec)), field(2, protowire.VarintType, nsec)...)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"marker alone", []byte{byte(BinaryMarker)}},
		{"truncated", good[:len(good)-3]},
		{"bad tag", entry(AppUpsertType, []byte{0x80})},
		{"string as varint", entry(AppUpsertType, field(1, protowire.VarintType, uint64(1)))},
		{"invalid UTF-8", entry(AppUpsertType, field(1, protowire.BytesType, []byte{0xff}))},
		{"invalid UTF-8 deep inside", entry(AppUpsertType, field(2, protowire.BytesType, field(9, protowire.BytesType, field(3, protowire.BytesType, []byte{0xc3}))))},
		{"spec as varint", entry(AppUpsertType, field(2, protowire.VarintType, uint64(1)))},
		{"nanoseconds out of range", entry(AppUpsertType, field(6, protowire.BytesType, timeMsg(0, 1e9)))},
		{"year out of range", entry(AppUpsertType, field(6, protowire.BytesType, timeMsg(1<<40, 0)))},
		{"year before 0", entry(AppUpsertType, field(6, protowire.BytesType, timeMsg(-1<<40, 0)))},
		{"unknown binary type", entry(AppScaleType)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, req, err := Decode(c.b); err == nil {
				t.Fatalf("decoded %#v", req)
			}
			h := newHarness(t)
			fill(h)
			before := dump(t, h.fsm.Store())
			if r := h.fsm.Apply(&raft.Log{Index: 1000, Type: raft.LogCommand, Data: c.b}); r == nil {
				t.Fatal("applied")
			}
			if !reflect.DeepEqual(before, dump(t, h.fsm.Store())) {
				t.Fatal("a refused entry changed the store")
			}
		})
	}

	h := newHarness(t)
	if r := h.fsm.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: entry(AppScaleType | IgnoreUnknownTypeFlag)}); r != nil {
		t.Fatalf("an unknown binary type with the ignore flag: %v", r)
	}
	if _, _, err := Decode(entry(AppScaleType)); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown binary type: %v, want ErrUnknownType", err)
	}
}

// TestBinaryAppliesAsJSON: the FSM ends in the same state whether the app
// and audit commands of a sequence travel as JSON or binary.
func TestBinaryAppliesAsJSON(t *testing.T) {
	api := fullSpec()
	api.Name, api.Pools, api.Instances, api.Autoscale = "api", []string{"aws-bj"}, intp(2), nil
	api2 := api
	api2.Image, api2.Instances = "api:2", nil
	auto := spec("auto", "auto:1")
	auto.Autoscale = &Autoscale{Min: 1, Max: 3, QPS: 10}
	cmds := []struct {
		t   MessageType
		req any
	}{
		{AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: api, Create: true, Time: t0}},
		{AppUpsertType, &AppUpsertRequest{Tenant: "acme", Spec: api2, CAS: u64p(1000), Time: t0.Add(time.Second)}},
		{AppUpsertType, &AppUpsertRequest{Tenant: "beta", Spec: auto, Time: t0.Add(2 * time.Second)}},
		{AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{{Time: t0, Actor: "ci", Method: "PUT", Path: "/v1/apps/api", Status: 201, Object: "api"}}, Keep: 1}},
		{AuditRecordType, &AuditRecordRequest{Entries: []AuditEntry{{Time: t0.Add(time.Second), Method: "PUT", Path: "/v1/apps/api", Status: 200}}, Keep: 1}},
	}
	asJSON, asBinary := newHarness(t), newHarness(t)
	fill(asJSON)
	fill(asBinary)
	for i, c := range cmds {
		jb, err := encodeJSON(c.t, c.req)
		if err != nil {
			t.Fatal(err)
		}
		bb, err := EncodeBinary(c.t, c.req)
		if err != nil {
			t.Fatal(err)
		}
		if MessageType(bb[0]) != BinaryMarker {
			t.Fatalf("command %d: not encoded in the binary form", i)
		}
		idx := uint64(1000 + i)
		if r := asJSON.fsm.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: jb}); r != nil {
			t.Fatalf("command %d as JSON: %v", i, r)
		}
		if r := asBinary.fsm.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: bb}); r != nil {
			t.Fatalf("command %d in the binary form: %v", i, r)
		}
	}
	if j, b := stateJSON(t, asJSON.fsm.Store()), stateJSON(t, asBinary.fsm.Store()); string(j) != string(b) {
		t.Fatalf("states differ:\nJSON:\n%s\nbinary:\n%s", j, b)
	}
}

// TestVersionSpecEqual holds Equal to its definition: reflect.DeepEqual
// once Command, Env and Ports are nil when empty.
func TestVersionSpecEqual(t *testing.T) {
	// A field added to these types must be compared by Equal too.
	for typ, n := range map[reflect.Type]int{reflect.TypeFor[VersionSpec](): 8, reflect.TypeFor[Health](): 6, reflect.TypeFor[Port](): 4} {
		if typ.NumField() != n {
			t.Fatalf("%v has %d fields, Equal compares %d: compare the new ones", typ, typ.NumField(), n)
		}
	}
	ref := func(v, o VersionSpec) bool {
		norm := func(x VersionSpec) VersionSpec {
			if len(x.Command) == 0 {
				x.Command = nil
			}
			if len(x.Env) == 0 {
				x.Env = nil
			}
			if len(x.Ports) == 0 {
				x.Ports = nil
			}
			return x
		}
		return reflect.DeepEqual(norm(v), norm(o))
	}
	base := VersionSpec{Image: "a:1", Command: []string{"x"}, Env: map[string]string{"K": "v"}, CPU: 100, Memory: 64,
		Ports: []Port{{Name: "http", ContainerPort: 80}}, Health: &Health{HTTP: "/", Command: []string{"c"}, Interval: Duration(time.Second)}, Secrets: 1}
	variants := []func(*VersionSpec){
		func(v *VersionSpec) {},
		func(v *VersionSpec) { v.Image = "a:2" },
		func(v *VersionSpec) { v.Command = nil },
		func(v *VersionSpec) { v.Command = []string{} },
		func(v *VersionSpec) { v.Command = []string{"x", ""} },
		func(v *VersionSpec) { v.Env = nil },
		func(v *VersionSpec) { v.Env = map[string]string{} },
		func(v *VersionSpec) { v.Env = map[string]string{"K": "w"} },
		func(v *VersionSpec) { v.Env = map[string]string{"L": "v"} },
		func(v *VersionSpec) { v.CPU = 200 },
		func(v *VersionSpec) { v.Memory = 65 },
		func(v *VersionSpec) { v.Ports = nil },
		func(v *VersionSpec) { v.Ports = []Port{} },
		func(v *VersionSpec) { v.Ports = []Port{{Name: "http", ContainerPort: 80, HostPort: 1}} },
		func(v *VersionSpec) { v.Health = nil },
		func(v *VersionSpec) { v.Health = &Health{} },
		func(v *VersionSpec) { h := *v.Health; h.Command = nil; v.Health = &h },
		func(v *VersionSpec) { h := *v.Health; h.Command = []string{}; v.Health = &h },
		func(v *VersionSpec) { h := *v.Health; h.Timeout = 1; v.Health = &h },
		func(v *VersionSpec) { h := *v.Health; h.TCP = 1; v.Health = &h },
		func(v *VersionSpec) { h := *v.Health; h.Port = 1; v.Health = &h },
		func(v *VersionSpec) { h := *v.Health; h.HTTP = "/x"; v.Health = &h },
		func(v *VersionSpec) { h := *v.Health; h.Interval = 2; v.Health = &h },
		func(v *VersionSpec) { v.Secrets = 2 },
	}
	mk := func(f func(*VersionSpec)) VersionSpec {
		v := base
		v.Health = &Health{HTTP: "/", Command: []string{"c"}, Interval: Duration(time.Second)}
		f(&v)
		return v
	}
	for i, f := range variants {
		for j, g := range variants {
			a, b := mk(f), mk(g)
			if got, want := a.Equal(b), ref(a, b); got != want {
				t.Errorf("variants %d and %d: Equal %v, reflect.DeepEqual %v", i, j, got, want)
			}
		}
	}
}
