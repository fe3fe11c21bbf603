package billing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/hub/state/statetest"
	"github.com/wharf-platform/wharf/internal/seal"
)

// TestBudgetWebhookSigned: a budget webhook with a secret is signed like
// alert webhooks (X-Wharf-Signature over the timestamp and the body):
// the receiver verifies it with the secret, a wrong secret fails it. A
// secret that does not open (another cluster's key) sends nothing rather
// than an unsigned post, and the threshold stays to be sent.
func TestBudgetWebhookSigned(t *testing.T) {
	const secret = "whsec-budget-1"
	keys, err := seal.NewKeyring(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	type post struct {
		header http.Header
		body   []byte
	}
	var posts []post
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, post{r.Header.Clone(), b})
		mu.Unlock()
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name  string
		open  *seal.Keyring // the keys the budget runner opens with
		posts int
	}{
		{"signed", keys, 2},
		{"a secret that does not open", mustKeyring(t), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			posts = nil
			mu.Unlock()
			st := statetest.New(t)
			st.Must(state.PlanCreateType, &state.PlanCreateRequest{Plan: state.Plan{Name: "flat", PlanTerms: state.PlanTerms{Currency: "USD", MonthlyFee: "100.00"}}, Time: at(1, 0)})
			sealed, err := SealWebhookSecret(keys, "acme", secret)
			if err != nil {
				t.Fatal(err)
			}
			name, budget, hook := "flat", "100.00", srv.URL+"/budget"
			st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", Plan: &name, Budget: &budget, BudgetWebhook: &hook, SealedBudgetSecret: &sealed, Time: at(1, 0)})
			now := at(3, 12)
			clock := func() time.Time { return now }
			b := NewBudgets(BudgetConfig{State: st.Store(), Invoices: NewBiller(BillerConfig{State: st.Store(), Now: clock}), Commit: &fsmApplier{fsm: st.FSM},
				Now: clock, Keys: tc.open, Notifier: &alert.Notifier{Base: 10 * time.Millisecond, Now: clock}})
			// A secret that does not open is also one the check cannot
			// re-seal: it says so.
			if err := b.Check(context.Background()); (err != nil) != (tc.posts == 0) {
				t.Fatalf("check: %v", err)
			}
			b.wg.Wait()
			mu.Lock()
			got := append([]post(nil), posts...)
			mu.Unlock()
			if len(got) != tc.posts {
				t.Fatalf("%d webhooks posted, want %d", len(got), tc.posts)
			}
			for _, p := range got {
				if err := alert.Verify(secret, p.header, p.body, now, 0); err != nil {
					t.Fatalf("the receiver's check with the secret: %v", err)
				}
				if err := alert.Verify("not-the-secret", p.header, p.body, now, 0); err == nil {
					t.Fatal("a wrong secret verified the webhook")
				}
			}
			ten, _ := st.Store().Snapshot().Tenant(nil, "acme")
			for _, a := range ten.BudgetState.Alerts {
				if a.Notified != (tc.posts > 0) {
					t.Fatalf("alert %d%% notified %v after %d posts", a.Percent, a.Notified, len(got))
				}
			}
		})
	}
}

func mustKeyring(t *testing.T) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(seal.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestBudgetWebhookSecretResealed: after a cluster key rotation, the
// budget check seals a webhook secret again under the current key (it
// still opens to the same secret); a re-seal of a secret that changed
// meanwhile is refused and changes nothing.
func TestBudgetWebhookSecretResealed(t *testing.T) {
	oldKey, newKey := seal.GenerateKey(), seal.GenerateKey()
	before, err := seal.NewKeyring(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := seal.NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	st := statetest.New(t)
	sealed, err := SealWebhookSecret(before, "acme", "whsec-rotate")
	if err != nil {
		t.Fatal(err)
	}
	hook := "https://hooks.example.com/b"
	st.Must(state.TenantUpdateType, &state.TenantUpdateRequest{Name: "acme", BudgetWebhook: &hook, SealedBudgetSecret: &sealed, Time: at(1, 0)})
	app := &fsmApplier{fsm: st.FSM}
	b := NewBudgets(BudgetConfig{State: st.Store(), Invoices: NewBiller(BillerConfig{State: st.Store()}), Commit: app, Keys: rotated})
	if err := b.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	ten, _ := st.Store().Snapshot().Tenant(nil, "acme")
	if !rotated.IsCurrent(ten.SealedBudgetSecret) {
		t.Fatal("the secret is still sealed under the old key")
	}
	if got, err := OpenWebhookSecret(rotated, "acme", ten.SealedBudgetSecret); err != nil || got != "whsec-rotate" {
		t.Fatalf("after the re-seal: %q %v", got, err)
	}
	stale := &state.TenantUpdateRequest{Name: "acme", SealedBudgetSecret: &sealed, ResealOf: &sealed, Time: at(1, 0)}
	if _, err := app.Apply(context.Background(), mustEncode(t, state.TenantUpdateType, stale)); state.KindOf(err) != state.KindConflict {
		t.Fatalf("a re-seal of a changed secret: %v", err)
	}
	if again, _ := st.Store().Snapshot().Tenant(nil, "acme"); string(again.SealedBudgetSecret) != string(ten.SealedBudgetSecret) {
		t.Fatal("a refused re-seal changed the secret")
	}
}
