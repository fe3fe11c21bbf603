// Package providertest is the conformance suite for providers: every
// implementation of providers.Provider runs Run against its cloud (a
// cloudsim simulator reached through the cloud's own SDK, or real OpenSSH
// servers), so that what the hub relies on is checked once, the same way,
// for every cloud.
//
// A provider's test gives a harness that makes a fresh cloud for each
// check, with a provider opened on it and hooks to break the cloud and to
// read what it holds:
//
//	providertest.Run(t, providertest.Harness{New: func(t *testing.T) *providertest.Cloud {
//		sim := ...
//		return &providertest.Cloud{Provider: p, BadCredentials: wrong, Template: tmpl, Held: ..., ...}
//	}})
//
// The suite checks: create is idempotent (the same machine id twice is one
// machine, also when the first answer was lost); delete of a missing
// machine is no error and describe of one is KindNotFound; list finds
// exactly this cluster's machines; tags and user data arrive as given;
// refusals are typed (bad credentials, throttled, quota, a failing cloud,
// unknown template parts) with the cloud's own words; and a cloud that
// does not answer gives a clear error within the caller's deadline.
//
// A check that cannot apply to a cloud (an SSH host has no quota and no
// rate limit) is declared in Harness.NotApplicable with the reason: the
// suite reports it as skipped with that reason, and fails when a hook a
// check needs is missing without such a declaration.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
)

// The checks, by the names Harness.NotApplicable takes.
const (
	CheckCreateIdempotent = "CreateIsIdempotent"
	CheckLostAnswer       = "CreateAfterLostAnswer"
	CheckDeleteMissing    = "DeleteMissing"
	CheckDescribeMissing  = "DescribeMissing"
	CheckList             = "ListFindsThisCluster"
	CheckListUntagged     = "ListLeavesOutUntagged"
	CheckTags             = "TagsArrive"
	CheckUserData         = "UserDataArrives"
	CheckBadCredentials   = "BadCredentials"
	CheckRefusedAuth      = "RefusedAuth"
	CheckThrottled        = "Throttled"
	CheckQuota            = "Quota"
	CheckServerFailure    = "ServerFailure"
	CheckUnknownTemplate  = "UnknownTemplateParts"
	CheckTimeout          = "TimeoutWithinDeadline"
)

// Cloud is one fresh cloud with a provider opened on it.
type Cloud struct {
	// Provider is opened on the cloud with good credentials; its retries
	// should not wait long (a check may meet a fault on every attempt).
	Provider providers.Provider
	// BadCredentials is opened on the same cloud with credentials it
	// refuses (a wrong secret or key).
	BadCredentials providers.Provider
	// BadCredentialsWords is what the cloud's refusal of them says (a
	// code or part of the message), which the error must show.
	BadCredentialsWords string
	// Template is a template that creates a machine.
	Template providers.Template
	// Held reads what the cloud holds now, from the cloud's side (the
	// simulator's state, the hosts' disks): every machine Wharf made
	// that is not on its way out.
	Held func(t testing.TB) []Held
	// MissingID is a provider id the cloud never had.
	MissingID string
	// Fail makes the cloud refuse every create call with kind, in its
	// own words, until Clear, and returns those words. Kinds: FaultLose,
	// FaultAuth, FaultThrottle, FaultQuota, FaultServer.
	Fail func(kind cloudsim.FaultKind) Words
	// Clear ends every fault Fail or Hang started.
	Clear func()
	// Unknown are templates with one part the cloud does not have, each
	// with the words (the unknown value, as the cloud's refusal names it)
	// the error must show.
	Unknown []Unknown
	// AddUntagged makes a machine in the cloud that carries no wharf
	// tags, as an admin would by hand; nil makes one through Provider
	// without a cluster.
	AddUntagged func(t testing.TB)
	// Hang makes the cloud stop answering and returns the provider and
	// template that meet it.
	Hang func(t testing.TB) (providers.Provider, providers.Template)
}

// Words are what a cloud's refusal says: its code ("" when it has none)
// and part of its message.
type Words struct {
	Code, Message string
}

// Unknown is a template with one part the cloud does not have.
type Unknown struct {
	Part     string // "instance type", "image", "flavor", ...
	Template providers.Template
	Words    string
}

// Held is one machine as the cloud holds it.
type Held struct {
	ProviderID string
	MachineID  string
	Tags       map[string]string
	// UserData as the cloud decoded it; nil where the cloud keeps none
	// (then CheckUserData must be declared not applicable).
	UserData []byte
}

// Harness is what a provider's test gives the suite.
type Harness struct {
	// New makes a fresh cloud for one check; it registers its own
	// cleanup with t.
	New func(t *testing.T) *Cloud
	// NotApplicable names the checks that do not apply to this cloud,
	// with the reason.
	NotApplicable map[string]string
}

// Deadline is what the timeout check gives a call against a cloud that
// does not answer; Slack is how late the call may return after it on a
// loaded machine.
const (
	Deadline = 500 * time.Millisecond
	Slack    = 3 * time.Second
)

// Run runs the conformance suite against the clouds h makes.
func Run(t *testing.T, h Harness) {
	checks := []struct {
		name string
		fn   func(*testing.T, *Cloud)
	}{
		{CheckCreateIdempotent, testCreateIdempotent},
		{CheckLostAnswer, testLostAnswer},
		{CheckDeleteMissing, testDeleteMissing},
		{CheckDescribeMissing, testDescribeMissing},
		{CheckList, testList},
		{CheckListUntagged, testListUntagged},
		{CheckTags, testTags},
		{CheckUserData, testUserData},
		{CheckBadCredentials, testBadCredentials},
		{CheckRefusedAuth, refusal(cloudsim.FaultAuth, providers.KindBadCredentials, false)},
		{CheckThrottled, refusal(cloudsim.FaultThrottle, providers.KindThrottled, true)},
		{CheckQuota, refusal(cloudsim.FaultQuota, providers.KindQuota, false)},
		{CheckServerFailure, refusal(cloudsim.FaultServer, providers.KindUnavailable, true)},
		{CheckUnknownTemplate, testUnknownTemplate},
		{CheckTimeout, testTimeout},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if why := h.NotApplicable[c.name]; why != "" {
				t.Skipf("not applicable to this cloud: %s", why)
			}
			c.fn(t, h.New(t))
		})
	}
}

// need fails the check when the harness lacks a hook it needs and did
// not declare the check not applicable.
func need(t *testing.T, ok bool, hook string) {
	t.Helper()
	if !ok {
		t.Fatalf("the harness gives no %s and does not declare %s not applicable", hook, t.Name())
	}
}

// Request is the suite's create of machine in cluster on c's template:
// the wharf tags, one of the admin's own, and a cloud-config whose
// runcmd is harmless where it runs.
func Request(c *Cloud, machine, cluster string) providers.CreateRequest {
	return providers.CreateRequest{
		MachineID: machine,
		Cluster:   cluster,
		Pool:      "pool-a",
		Template:  c.Template,
		UserData: []byte("#cloud-config\n# machine " + machine + ": quotes \" ' and UTF-8 \u00e9\u2713\nruncmd:\n" +
			"  - [sh, -c, \"echo $0 >/dev/null\", " + machine + "]\n"),
		Tags: map[string]string{providers.TagCluster: cluster, providers.TagPool: "pool-a", providers.TagMachine: machine, "team": "infra"},
	}
}

// heldAs returns the machines the cloud holds for machine id.
func heldAs(t *testing.T, c *Cloud, machine string) []Held {
	t.Helper()
	var out []Held
	for _, h := range c.Held(t) {
		if h.MachineID == machine {
			out = append(out, h)
		}
	}
	return out
}

// wantOne fails unless the cloud holds exactly one machine for machine
// id, with providerID ("" for any); it returns it.
func wantOne(t *testing.T, c *Cloud, machine, providerID string) Held {
	t.Helper()
	held := heldAs(t, c, machine)
	if len(held) != 1 || providerID != "" && held[0].ProviderID != providerID {
		t.Fatalf("the cloud holds %+v for machine %s, want one (%s)", held, machine, providerID)
	}
	return held[0]
}

func wantNone(t *testing.T, c *Cloud, machine string) {
	t.Helper()
	if held := heldAs(t, c, machine); len(held) != 0 {
		t.Fatalf("the cloud holds %+v for machine %s, want none", held, machine)
	}
}

// wantKind fails unless err is a *providers.Error of kind that shows
// words.
func wantKind(t *testing.T, what string, err error, kind providers.Kind, words ...string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%s: %v (%T), want a *providers.Error of kind %s", what, err, err, kind)
	}
	if pe.Kind != kind {
		t.Fatalf("%s: kind %s (%v), want %s", what, pe.Kind, err, kind)
	}
	for _, w := range words {
		if w != "" && !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: %q does not show the cloud's words %q", what, err, w)
		}
	}
	return pe
}

func testCreateIdempotent(t *testing.T, c *Cloud) {
	ctx := context.Background()
	req := Request(c, "m-idem", "c1")
	m, err := c.Provider.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Provider.Create(ctx, req) // the hub retrying after a restart
	if err != nil {
		t.Fatalf("the same create again: %v", err)
	}
	if m.ProviderID == "" || again.ProviderID != m.ProviderID || m.MachineID != req.MachineID || again.MachineID != req.MachineID {
		t.Fatalf("created %+v, then %+v: want one machine %s", m, again, req.MachineID)
	}
	wantOne(t, c, req.MachineID, m.ProviderID)
}

func testLostAnswer(t *testing.T, c *Cloud) {
	need(t, c.Fail != nil && c.Clear != nil, "Fail and Clear")
	ctx := context.Background()
	req := Request(c, "m-lost", "c1")
	c.Fail(cloudsim.FaultLose)
	first, ferr := c.Provider.Create(ctx, req)
	if ferr != nil && !providers.Retryable(ferr) {
		t.Fatalf("a create whose answers were lost: %v (kind %s), want a retryable error", ferr, providers.KindOf(ferr))
	}
	c.Clear()
	m, err := c.Provider.Create(ctx, req) // the hub's retry
	if err != nil {
		t.Fatalf("the retry after lost answers: %v", err)
	}
	if ferr == nil && first.ProviderID != m.ProviderID {
		t.Fatalf("created %s, then %s", first.ProviderID, m.ProviderID)
	}
	wantOne(t, c, req.MachineID, m.ProviderID)
}

func testDeleteMissing(t *testing.T, c *Cloud) {
	ctx := context.Background()
	if err := c.Provider.Delete(ctx, c.MissingID); err != nil {
		t.Fatalf("delete of %s, which the cloud never had: %v", c.MissingID, err)
	}
	m, err := c.Provider.Create(ctx, Request(c, "m-del", "c1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := c.Provider.Delete(ctx, m.ProviderID); err != nil {
			t.Fatalf("delete %d of %s: %v", i+1, m.ProviderID, err)
		}
	}
	wantNone(t, c, "m-del")
}

func testDescribeMissing(t *testing.T, c *Cloud) {
	_, err := c.Provider.Describe(context.Background(), c.MissingID)
	pe := wantKind(t, "describe of a machine the cloud never had", err, providers.KindNotFound)
	if pe.Code == "" && pe.Message == "" {
		t.Fatalf("the not-found says nothing of the cloud's: %#v", pe)
	}
}

// listed is a List's machines by machine id, checked to be cluster's.
func listed(t *testing.T, c *Cloud, cluster string) map[string]providers.Machine {
	t.Helper()
	list, err := c.Provider.List(context.Background(), cluster)
	if err != nil {
		t.Fatalf("list %s: %v", cluster, err)
	}
	out := map[string]providers.Machine{}
	for _, m := range list {
		if m.Tags[providers.TagCluster] != cluster {
			t.Fatalf("list %s: %+v is not the cluster's", cluster, m)
		}
		if _, dup := out[m.MachineID]; dup {
			t.Fatalf("list %s: machine %s twice", cluster, m.MachineID)
		}
		out[m.MachineID] = m
	}
	return out
}

func testList(t *testing.T, c *Cloud) {
	ctx := context.Background()
	want := map[string]map[string]string{"c1": {}, "c2": {}} // cluster → machine → provider id
	for _, mc := range []struct{ machine, cluster string }{{"m-a1", "c1"}, {"m-b1", "c2"}, {"m-a2", "c1"}} {
		m, err := c.Provider.Create(ctx, Request(c, mc.machine, mc.cluster))
		if err != nil {
			t.Fatal(err)
		}
		want[mc.cluster][mc.machine] = m.ProviderID
	}
	for cluster, machines := range want {
		got := map[string]string{}
		for id, m := range listed(t, c, cluster) {
			got[id] = m.ProviderID
		}
		if !maps.Equal(got, machines) {
			t.Fatalf("list %s: %v, want %v", cluster, got, machines)
		}
	}
	if got := listed(t, c, "c-none"); len(got) != 0 {
		t.Fatalf("list of a cluster with no machines: %v", got)
	}
}

func testListUntagged(t *testing.T, c *Cloud) {
	ctx := context.Background()
	if c.AddUntagged != nil {
		c.AddUntagged(t)
	} else {
		req := Request(c, "m-loose", "")
		req.Pool, req.Tags = "", nil
		if _, err := c.Provider.Create(ctx, req); err != nil {
			t.Fatalf("a machine of no cluster: %v", err)
		}
	}
	m, err := c.Provider.Create(ctx, Request(c, "m-own", "c1"))
	if err != nil {
		t.Fatal(err)
	}
	got := listed(t, c, "c1")
	if len(got) != 1 || got["m-own"].ProviderID != m.ProviderID {
		t.Fatalf("list c1 beside an untagged machine: %+v, want only %s", got, m.ProviderID)
	}
}

func testTags(t *testing.T, c *Cloud) {
	req := Request(c, "m-tags", "c1")
	m, err := c.Provider.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	held := wantOne(t, c, req.MachineID, m.ProviderID)
	for k, v := range req.Tags {
		if m.Tags[k] != v {
			t.Errorf("the created machine's tag %s is %q, want %q (tags %v)", k, m.Tags[k], v, m.Tags)
		}
		if held.Tags[k] != v {
			t.Errorf("the cloud holds tag %s as %q, want %q (tags %v)", k, held.Tags[k], v, held.Tags)
		}
	}
	d, err := c.Provider.Describe(context.Background(), m.ProviderID)
	if err != nil || d.MachineID != req.MachineID || d.Tags[providers.TagCluster] != "c1" {
		t.Fatalf("describe: %+v %v", d, err)
	}
}

func testUserData(t *testing.T, c *Cloud) {
	req := Request(c, "m-ud", "c1")
	m, err := c.Provider.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	held := wantOne(t, c, req.MachineID, m.ProviderID)
	if string(held.UserData) != string(req.UserData) {
		t.Fatalf("the cloud holds user data %q, want %q", held.UserData, req.UserData)
	}
}

func testBadCredentials(t *testing.T, c *Cloud) {
	need(t, c.BadCredentials != nil && c.BadCredentialsWords != "", "BadCredentials and their words")
	req := Request(c, "m-creds", "c1")
	_, err := c.BadCredentials.Create(context.Background(), req)
	wantKind(t, "create with credentials the cloud refuses", err, providers.KindBadCredentials, c.BadCredentialsWords)
	if providers.Retryable(err) {
		t.Fatalf("bad credentials are retryable: %v", err)
	}
	wantNone(t, c, req.MachineID)
}

// refusal checks that a create the cloud refuses with fault is an error
// of kind, with the cloud's code and words, and makes nothing.
func refusal(fault cloudsim.FaultKind, kind providers.Kind, retryable bool) func(*testing.T, *Cloud) {
	return func(t *testing.T, c *Cloud) {
		need(t, c.Fail != nil && c.Clear != nil, "Fail and Clear")
		req := Request(c, "m-"+fault.String(), "c1")
		words := c.Fail(fault)
		_, err := c.Provider.Create(context.Background(), req)
		c.Clear()
		pe := wantKind(t, "a create refused with "+fault.String(), err, kind, words.Message)
		if words.Code != "" && pe.Code != words.Code {
			t.Fatalf("code %q (%v), want the cloud's %q", pe.Code, err, words.Code)
		}
		if providers.Retryable(err) != retryable {
			t.Fatalf("retryable %v for %v, want %v", !retryable, err, retryable)
		}
		wantNone(t, c, req.MachineID)
	}
}

func testUnknownTemplate(t *testing.T, c *Cloud) {
	need(t, len(c.Unknown) > 0, "Unknown templates")
	for i, u := range c.Unknown {
		req := Request(c, fmt.Sprintf("m-unknown-%d", i), "c1")
		req.Template = u.Template
		_, err := c.Provider.Create(context.Background(), req)
		wantKind(t, "a template with an unknown "+u.Part, err, providers.KindBadRequest, u.Words)
		wantNone(t, c, req.MachineID)
	}
}

func testTimeout(t *testing.T, c *Cloud) {
	need(t, c.Hang != nil && c.Clear != nil, "Hang and Clear")
	p, tmpl := c.Hang(t)
	defer c.Clear()
	req := Request(c, "m-hang", "c1")
	req.Template = tmpl
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	start := time.Now()
	_, err := p.Create(ctx, req)
	took := time.Since(start)
	if err == nil {
		t.Fatal("a create against a cloud that does not answer succeeded")
	}
	if took > Deadline+Slack {
		t.Fatalf("the create returned after %v, its deadline was %v: %v", took, Deadline, err)
	}
	if k := providers.KindOf(err); k != providers.KindUnavailable && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v (kind %q), want KindUnavailable or the context's deadline", err, k)
	}
	if !providers.Retryable(err) {
		t.Fatalf("a timeout is not retryable: %v", err)
	}
	msg := strings.ToLower(err.Error())
	if !slices.ContainsFunc([]string{"deadline", "timeout", "timed out"}, func(w string) bool { return strings.Contains(msg, w) }) {
		t.Fatalf("the error does not say the cloud did not answer in time: %v", err)
	}
}
