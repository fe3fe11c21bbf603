package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/billing"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// Billing: plans, tenants' plans and budgets, daily bills and monthly
// invoices. The pricing is hub/billing's; this file checks input and
// shapes answers.

// Biller prices usage (hub/billing's Biller).
type Biller interface {
	Bills(ctx context.Context, tenant string, first, last time.Time) ([]billing.Bill, error)
	Invoice(ctx context.Context, tenant string, month time.Time) (*billing.Invoice, error)
	Invoices(ctx context.Context, month time.Time) ([]*billing.Invoice, error)
}

// maxBillDays bounds the days one bills request may cover.
const maxBillDays = 366

func (s *Server) registerBilling() {
	s.handle("POST /v1/plans", authed, s.createPlan)
	s.handle("GET /v1/plans", authed, s.listPlans)
	s.handle("GET /v1/plans/{name}", authed, s.getPlan)
	s.handle("DELETE /v1/plans/{name}", authed, s.deletePlan)
	s.handle("PUT /v1/tenants/{name}", authed, s.updateTenant)
	s.handle("GET /v1/bills", authed, s.listBills)
	s.handle("GET /v1/invoices", authed, s.getInvoices)
}

func planOut(p *state.Plan) apitypes.Plan {
	c := p.Copy()
	out := apitypes.Plan{Name: c.Name, Currency: c.Currency, Prices: c.Prices, Included: c.Included, MonthlyFee: c.MonthlyFee,
		CreatedAt: c.CreatedAt, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex}
	if out.Prices == nil {
		out.Prices = map[string]string{}
	}
	if out.Included == nil {
		out.Included = map[string]string{}
	}
	return out
}

// tenantBilling adds a tenant's plan and budget to its API shape.
func tenantBilling(out *apitypes.Tenant, t *state.Tenant) {
	out.Plan = t.CurrentPlan()
	for _, p := range t.Plans {
		out.PlanHistory = append(out.PlanHistory, apitypes.PlanPeriod{Plan: p.Plan, From: p.From})
	}
	out.Budget, out.BudgetHardStop, out.BudgetWebhook = t.Budget, t.BudgetHardStop, t.BudgetWebhook
	if st := t.BudgetState; st != nil {
		bs := &apitypes.BudgetStatus{Month: st.Month, Spent: st.Spent, Over: st.Over}
		for _, a := range st.Alerts {
			bs.Alerts = append(bs.Alerts, apitypes.BudgetAlert{Percent: a.Percent, At: a.At, Spent: a.Spent, Notified: a.Notified})
		}
		out.BudgetStatus = bs
	}
}

func billingFieldError(err error) error {
	var fe *billing.FieldError
	if errors.As(err, &fe) {
		return apitypes.FieldError(fe.Field, "%s", fe.Msg)
	}
	return err
}

func (s *Server) createPlan(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("creating plans needs an admin token")
	}
	var req apitypes.PlanRequest
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := apitypes.CheckName("name", req.Name); err != nil {
		return err
	}
	plan, err := billing.ParsePlan(billing.PlanSpec{Name: req.Name, Currency: req.Currency, Prices: req.Prices, Included: req.Included, MonthlyFee: req.MonthlyFee})
	if err != nil {
		return billingFieldError(err)
	}
	c := plan.Canonical()
	sp := state.Plan{Name: c.Name, PlanTerms: state.PlanTerms{Currency: c.Currency, Prices: c.Prices, Included: c.Included, MonthlyFee: c.MonthlyFee}}
	if _, err := s.apply(r.Context(), state.PlanCreateType, &state.PlanCreateRequest{Plan: sp, Time: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().Plan(nil, req.Name)
	if err != nil || got == nil {
		return errNotFound("plan", req.Name)
	}
	return writeJSON(w, http.StatusCreated, planOut(got))
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		ps, err := snap.Plans(ws)
		return mapAll(ps, planOut), snap.Index(state.TablePlans), err
	})
}

func (s *Server) getPlan(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	return s.query(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (any, uint64, error) {
		x, err := snap.Plan(ws, name)
		if err != nil {
			return nil, 0, err
		}
		if x == nil {
			return nil, 0, errNotFound("plan", name)
		}
		return planOut(x), snap.Index(state.TablePlans), nil
	})
}

func (s *Server) deletePlan(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.admin() {
		return errForbidden("deleting plans needs an admin token")
	}
	if _, err := s.apply(r.Context(), state.PlanDeleteType, &state.PlanDeleteRequest{Name: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateTenant changes a tenant's plan (admins) or budget (admins and the
// tenant's tenant-admin): only the fields given.
func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	if !p.admin() && name != p.token.Tenant {
		return errNotFound("tenant", name)
	}
	var req apitypes.TenantUpdate
	if err := decodeBody(r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.Plan == nil && req.Budget == nil && req.BudgetHardStop == nil && req.BudgetWebhook == nil {
		return &apitypes.Error{Status: http.StatusBadRequest, Message: "nothing to change: give plan, budget, budget_hard_stop or budget_webhook"}
	}
	if req.Plan != nil && !p.admin() {
		return errForbidden("changing a tenant's plan needs an admin token")
	}
	if !p.canManageTokens() {
		return errForbidden("changing a tenant's budget needs an admin or tenant-admin token")
	}
	snap := s.cfg.Store.Snapshot()
	t, err := snap.Tenant(nil, name)
	if err != nil {
		return err
	}
	if t == nil {
		return errNotFound("tenant", name)
	}
	if req.Plan != nil {
		if *req.Plan == "" {
			return apitypes.FieldError("plan", "a tenant's plan can be changed, not removed")
		}
		if pl, err := snap.Plan(nil, *req.Plan); err != nil {
			return err
		} else if pl == nil {
			return apitypes.FieldError("plan", "plan %s does not exist: create it with POST /v1/plans", *req.Plan)
		}
	}
	if req.Budget != nil && *req.Budget != "" {
		canonical, err := checkBudget(snap, t, req)
		if err != nil {
			return err
		}
		req.Budget = &canonical
	}
	if req.BudgetWebhook != nil && *req.BudgetWebhook != "" {
		u, err := url.Parse(*req.BudgetWebhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(*req.BudgetWebhook) > 2048 {
			return apitypes.FieldError("budget_webhook", "budget_webhook must be an http or https URL (at most 2048 bytes)")
		}
	}
	upd := &state.TenantUpdateRequest{Name: name, Plan: req.Plan, Budget: req.Budget, BudgetHardStop: req.BudgetHardStop, BudgetWebhook: req.BudgetWebhook, Time: s.cfg.Now().UTC()}
	if _, err := s.apply(r.Context(), state.TenantUpdateType, upd); err != nil {
		return err
	}
	got, err := s.cfg.Store.Snapshot().Tenant(nil, name)
	if err != nil || got == nil {
		return errNotFound("tenant", name)
	}
	return writeJSON(w, http.StatusOK, tenantOut(got))
}

// checkBudget checks a budget amount against the currency of the plan the
// tenant will be on, and returns it in canonical form ("200" is "200.00").
func checkBudget(snap *state.Snapshot, t *state.Tenant, req apitypes.TenantUpdate) (string, error) {
	cur := ""
	if len(t.Plans) > 0 {
		cur = t.Plans[len(t.Plans)-1].Currency
	}
	if req.Plan != nil {
		if pl, _ := snap.Plan(nil, *req.Plan); pl != nil {
			cur = pl.Currency
		}
	}
	if cur == "" {
		return "", apitypes.FieldError("budget", "tenant %s has no plan: a budget is in its plan's currency, so give it a plan first", t.Name)
	}
	c, err := billing.LookupCurrency(cur)
	if err != nil {
		return "", apitypes.FieldError("budget", "%v", err)
	}
	n, err := c.ParseAmount(*req.Budget)
	if err != nil {
		return "", apitypes.FieldError("budget", "budget: %v", err)
	}
	if n.Sign() == 0 {
		return "", apitypes.FieldError("budget", "budget must be above zero (\"\" removes it)")
	}
	return c.Format(n), nil
}

// readBilling makes a billing read linearizable unless ?stale.
func (s *Server) readBilling(r *http.Request) error {
	if r.URL.Query().Has("stale") {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	return s.cfg.Cluster.ConsistentRead(ctx)
}

func billingError(err error, tenant string) error {
	switch {
	case errors.Is(err, billing.ErrNotFound):
		return errNotFound("tenant", tenant)
	case errors.Is(err, billing.ErrNoPlan):
		return &apitypes.Error{Status: http.StatusNotFound, Message: err.Error()}
	}
	return err
}

// parseDay reads a day: YYYY-MM-DD, or an RFC 3339 time (its UTC day).
func parseDay(field, v string) (time.Time, error) {
	if d, err := time.Parse("2006-01-02", v); err == nil {
		return d, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return billing.Day(t), nil
	}
	return time.Time{}, apitypes.FieldError(field, "%s must be a day (YYYY-MM-DD) or an RFC 3339 time, not %q", field, v)
}

// listBills: GET /v1/bills?tenant=T[&from=DAY&to=DAY], both days included;
// without a range, this month up to and including today.
func (s *Server) listBills(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := tenantScope(r, p, true)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	today := billing.Day(s.cfg.Now())
	first, last := billing.MonthOf(today), today
	if v := q.Get("to"); v != "" {
		if last, err = parseDay("to", v); err != nil {
			return err
		}
		first = billing.MonthOf(last)
	}
	if v := q.Get("from"); v != "" {
		if first, err = parseDay("from", v); err != nil {
			return err
		}
	}
	if first.After(last) {
		return apitypes.FieldError("from", "from (%s) is after to (%s)", first.Format("2006-01-02"), last.Format("2006-01-02"))
	}
	if last.Sub(first) >= maxBillDays*24*time.Hour {
		return apitypes.FieldError("from", "a request covers at most %d days", maxBillDays)
	}
	if err := s.readBilling(r); err != nil {
		return err
	}
	bills, err := s.cfg.Billing.Bills(r.Context(), tenant, first, last)
	if err != nil {
		return billingError(err, tenant)
	}
	out := make([]apitypes.Bill, len(bills))
	for i := range bills {
		out[i] = bills[i].Out()
	}
	return writeJSON(w, http.StatusOK, out)
}

var monthRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}$`)

// invoiceFormat is json, csv or html: ?format= first, else the Accept
// header.
func invoiceFormat(r *http.Request) (string, error) {
	if f := r.URL.Query().Get("format"); f != "" {
		switch f {
		case "json", "csv", "html":
			return f, nil
		}
		return "", apitypes.FieldError("format", "format must be json, csv or html, not %q", f)
	}
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "text/csv"):
		return "csv", nil
	case strings.Contains(accept, "text/html"):
		return "html", nil
	}
	return "json", nil
}

// getInvoices: GET /v1/invoices?tenant=T&month=YYYY-MM (this month without
// month); an admin without tenant gets every tenant's (JSON array, or one
// CSV table with a tenant column).
func (s *Server) getInvoices(w http.ResponseWriter, r *http.Request, p *principal) error {
	tenant, err := tenantScope(r, p, false)
	if err != nil {
		return err
	}
	format, err := invoiceFormat(r)
	if err != nil {
		return err
	}
	month := billing.MonthOf(s.cfg.Now())
	if v := r.URL.Query().Get("month"); v != "" {
		m, err := time.Parse("2006-01", v)
		if !monthRE.MatchString(v) || err != nil {
			return apitypes.FieldError("month", "month must be YYYY-MM, not %q", v)
		}
		month = m
	}
	if err := s.readBilling(r); err != nil {
		return err
	}
	var invs []apitypes.Invoice
	if tenant == "" {
		all, err := s.cfg.Billing.Invoices(r.Context(), month)
		if err != nil {
			return err
		}
		invs = make([]apitypes.Invoice, 0, len(all))
		for _, inv := range all {
			invs = append(invs, inv.Out())
		}
	} else {
		inv, err := s.cfg.Billing.Invoice(r.Context(), tenant, month)
		if err != nil {
			return billingError(err, tenant)
		}
		invs = []apitypes.Invoice{inv.Out()}
	}
	name := "invoices-" + month.Format("2006-01")
	if tenant != "" {
		name = "invoice-" + tenant + "-" + month.Format("2006-01")
	}
	var buf bytes.Buffer
	switch format {
	case "csv":
		if err := billing.WriteCSV(&buf, invs); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".csv"))
	case "html":
		if err := billing.WriteHTML(&buf, invs); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	default:
		if tenant != "" {
			return writeJSON(w, http.StatusOK, invs[0])
		}
		return writeJSON(w, http.StatusOK, invs)
	}
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}
