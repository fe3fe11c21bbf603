package billing

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
)

// fsmApplier commits straight to a real FSM, counting the commands.
type fsmApplier struct {
	mu    sync.Mutex
	fsm   *state.FSM
	index uint64
	n     int
}

func (a *fsmApplier) Apply(_ context.Context, msg []byte) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.index++
	a.n++
	if r := a.fsm.Apply(&raft.Log{Index: 1000 + a.index, Type: raft.LogCommand, Data: msg}); r != nil {
		return 0, r.(error)
	}
	return 1000 + a.index, nil
}

func (a *fsmApplier) count() int { a.mu.Lock(); defer a.mu.Unlock(); return a.n }

// hookReceiver records budget webhooks.
type hookReceiver struct {
	mu    sync.Mutex
	notes []alert.Notification
	ids   []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var n alert.Notification
	_ = json.Unmarshal(b, &n)
	h.mu.Lock()
	h.notes = append(h.notes, n)
	h.ids = append(h.ids, r.Header.Get(alert.HeaderDelivery))
	h.mu.Unlock()
}

func (h *hookReceiver) got() []alert.Notification {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alert.Notification(nil), h.notes...)
}

func TestJudgeBudget(t *testing.T) {
	for _, tt := range []struct {
		spent, budget int64
		over          bool
		percents      []int
	}{
		{0, 10000, false, nil},
		{7999, 10000, false, nil},
		{8000, 10000, false, []int{80}},
		{9999, 10000, false, []int{80}},
		{10000, 10000, true, []int{80, 100}},
		{25000, 10000, true, []int{80, 100}},
		{1, 1, true, []int{80, 100}},
		{5, 0, false, nil},
	} {
		v := JudgeBudget(big.NewInt(tt.spent), big.NewInt(tt.budget))
		if v.Over != tt.over || !reflect.DeepEqual(v.Percents, tt.percents) {
			t.Errorf("spent %d of %d: %+v", tt.spent, tt.budget, v)
		}
	}
}

// TestBudgetAlertsOnceAndHardStop: a plan whose fee alone reaches the
// budget alerts at 80% and 100% once each (event and webhook), a hard stop
// refuses new instances, a raised budget lifts it, a new month alerts
// again.
func TestBudgetAlertsOnceAndHardStop(t *testing.T) {
	st := statetest.New(t)
	feePlan := state.Plan{Name: "flat", PlanTerms: state.PlanTerms{Currency: "USD", MonthlyFee: "100.00"}}
	st.Must(state.PlanCreateType, &state.PlanCreateRequest{Plan: feePlan, Time: at(1, 0)})
	hooks := &hookReceiver{}
	srv := httptest.NewServer(hooks)
	defer srv.Close()
	name, budget, stop, hook := "flat", "100.00", true, srv.URL+"/budget?token=x"
	st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &name, Budget: &budget, BudgetHardStop: &stop, BudgetWebhook: &hook, Time: at(1, 0)})

	now := at(3, 12)
	clock := func() time.Time { return now }
	app := &fsmApplier{fsm: st.FSM}
	biller := NewBiller(BillerConfig{State: st.Store(), Now: clock})
	b := NewBudgets(BudgetConfig{State: st.Store(), Invoices: biller, Commit: app, Now: clock, Notifier: &alert.Notifier{Base: 10 * time.Millisecond}})
	ctx := context.Background()
	check := func() {
		t.Helper()
		if err := b.Check(ctx); err != nil {
			t.Fatal(err)
		}
		b.wg.Wait()
	}
	check()
	ten, _ := st.Store().Snapshot().Tenant(nil, "acme")
	bs := ten.BudgetState
	if bs == nil || bs.Month != "2026-12" || !bs.Over || bs.Spent != "100.00" || len(bs.Alerts) != 2 || !bs.Alerts[0].Notified || !bs.Alerts[1].Notified {
		t.Fatalf("after the first check: %+v", bs)
	}
	notes := hooks.got()
	if len(notes) != 2 || notes[0].Tenant != "acme" || notes[0].Metric != "budget" {
		t.Fatalf("webhooks: %+v", notes)
	}
	events, _ := st.Store().Snapshot().Events(nil, 0)
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.Type]++
	}
	if kinds["budget.warning"] != 1 || kinds["budget.exceeded"] != 1 {
		t.Fatalf("events: %v", kinds)
	}

	// Checks that find nothing new commit nothing and send nothing.
	n := app.count()
	check()
	check()
	if app.count() != n || len(hooks.got()) != 2 {
		t.Fatalf("repeated checks: %d commands (was %d), %d webhooks", app.count(), n, len(hooks.got()))
	}

	// The hard stop: a new app and a scale-up are refused, nothing changes.
	spec := state.AppSpec{Name: "web", Image: "web:1", CPU: 100, Memory: 128}
	before := st.Store().Snapshot().LatestIndex()
	if _, err := app.Apply(ctx, mustEncode(t, state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: spec, Create: true, Time: now})); state.KindOf(err) != state.KindRefused {
		t.Fatalf("new app over budget: %v", err)
	}
	if st.Store().Snapshot().LatestIndex() != before {
		t.Fatal("a refused app changed the store")
	}

	// A raised budget lifts the stop at once; the next check agrees.
	budget = "500.00"
	st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Budget: &budget, Time: now})
	if _, err := app.Apply(ctx, mustEncode(t, state.AppUpsertType, &state.AppUpsertRequest{Tenant: "acme", Spec: spec, Create: true, Time: now})); err != nil {
		t.Fatalf("new app under the raised budget: %v", err)
	}
	check()
	ten, _ = st.Store().Snapshot().Tenant(nil, "acme")
	if ten.BudgetState.Over || len(ten.BudgetState.Alerts) != 2 || len(hooks.got()) != 2 {
		t.Fatalf("after raising the budget: %+v, %d webhooks", ten.BudgetState, len(hooks.got()))
	}

	// A new month starts afresh: the fee alone is 20% of 500: nothing.
	// Back to 100: both thresholds alert again, for January.
	now = time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC)
	budget = "100.00"
	st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Budget: &budget, Time: now})
	check()
	ten, _ = st.Store().Snapshot().Tenant(nil, "acme")
	if ten.BudgetState.Month != "2027-01" || len(ten.BudgetState.Alerts) != 2 || len(hooks.got()) != 4 {
		t.Fatalf("January: %+v, %d webhooks", ten.BudgetState, len(hooks.got()))
	}
}

func mustEncode(t *testing.T, mt state.MessageType, req any) []byte {
	t.Helper()
	b, err := state.Encode(mt, req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
