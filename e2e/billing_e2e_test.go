package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"math/big"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver"
	"github.com/wharf-platform/wharf/agent/driver/docker"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// billingPrices is the plan of TestBillingEndToEnd: prices whose amounts
// round (so a rounding done twice, or in floats, shows).
var billingPrices = map[string]string{
	"instance_hour":    "0.57",
	"cpu_core_hour":    "0.031",
	"memory_gb_hour":   "0.0043",
	"requests_million": "3900",
	"egress_gb":        "917",
	"log_gb":           "501",
}

// billingFee is the plan's monthly fee.
const billingFee = "30.00"

// TestBillingEndToEnd: a 3-node hub, an agent with the Docker driver
// running two real containers of an app whose traffic goes through the
// agent's router for several short metered hours (5 s), while the leader
// is killed once and the node the agent is connected to is killed once.
// Then, with the app deleted and every hour closed: the requests metered
// equal the requests sent; the instance-seconds are the containers' real
// lifetimes as the metering rule counts them (from the running report,
// within a few seconds of the container's start, to the app's deletion);
// the daily bills, the month's invoice (JSON) and its CSV are the plan's
// prices × that usage, computed here with math/big and rounded once per
// bill line, halves away from zero.
func TestBillingEndToEnd(t *testing.T) {
	image := drivertest.BuildTestAppImage(t, dockerDaemon(t).Client())
	const hour = 5 * time.Second
	c, _, token := newCluster(t, hubtest.Options{SuspectAfter: 10 * time.Second, DownAfter: time.Minute, MeterHour: hour}, "p", "acme")
	ctx := context.Background()
	api := func() *client.Client {
		cl, _ := client.New(client.Config{Address: c.WaitLeader(15 * time.Second).URL(), Token: token})
		return cl
	}
	retry := func(what string, f func() error) {
		t.Helper()
		hubtest.WaitUntil(t, 20*time.Second, what, f)
	}
	retry("the plan", func() error {
		_, err := api().Plans().Create(ctx, apitypes.PlanRequest{Name: "metered", Currency: "USD", Prices: billingPrices, MonthlyFee: billingFee})
		if apitypes.StatusOf(err) == http.StatusConflict {
			return nil
		}
		return err
	})
	plan := "metered"
	var ten *apitypes.Tenant
	retry("acme's plan", func() (err error) {
		ten, err = api().Tenants().Update(ctx, "acme", apitypes.TenantUpdate{Plan: &plan})
		return err
	})

	var mu sync.Mutex
	var drv driver.Driver
	newDriver := func(hostID string) (driver.Driver, error) {
		d, err := docker.New(docker.Config{HostID: hostID, PublishIP: "127.0.0.1"})
		if err == nil {
			mu.Lock()
			drv = d
			mu.Unlock()
		}
		return d, err
	}
	stopLeftovers(t, func() []driver.Driver {
		mu.Lock()
		defer mu.Unlock()
		if drv == nil {
			return nil
		}
		return []driver.Driver{drv}
	})
	jt := joinToken(t, api(), apitypes.JoinTokenRequest{Pool: "p"})
	a, _ := runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: t.TempDir(), Name: "d", DrainDelay: -1,
		NewDriver: newDriver, RouterHTTPAddr: "127.0.0.1:0"})
	hubtest.WaitFor(t, 20*time.Second, "a ready host", func() bool {
		hs, _, err := api().Hosts().List(ctx, nil)
		return err == nil && len(hs) == 1 && hs[0].State == "ready"
	})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	spec := apitypes.AppSpec{Name: "web", Image: image, Instances: intp(2), CPU: 250, Memory: 64,
		Ports: []apitypes.Port{{ContainerPort: 8080}}, Health: &apitypes.Health{HTTP: "/healthz"}}
	retry("app web", func() error {
		_, err := api().Apps().Create(ctx, spec, w)
		if apitypes.StatusOf(err) == http.StatusConflict {
			return nil
		}
		return err
	})
	var instances []string
	hubtest.WaitUntil(t, 60*time.Second, "two running instances", func() error {
		is, _, err := api().Apps().Instances(ctx, "web", q)
		if err != nil {
			return err
		}
		instances = nil
		for _, i := range is {
			if i.State == "running" && i.Ready {
				instances = append(instances, i.ID)
			}
		}
		if len(instances) != 2 {
			return fmt.Errorf("%d running and ready", len(instances))
		}
		return nil
	})

	routerAddr, _ := a.RouterAddrs()
	var sent int64
	get := func() bool {
		req, _ := http.NewRequest("GET", "http://"+routerAddr+"/", nil)
		req.Host = "web.acme.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound { // the router's own: no route yet
			return false
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("through the router: %s", resp.Status)
		}
		sent++
		return true
	}
	hubtest.WaitFor(t, 30*time.Second, "the router to route web", get)
	send := func(n int) {
		t.Helper()
		for range n {
			if !get() {
				t.Fatal("the router lost web's route")
			}
		}
	}
	// nodeOf is the node the agent reports to, as the agent itself tells.
	nodeOf := func() int {
		via := -1
		hubtest.WaitFor(t, 20*time.Second, "the agent's hub node", func() bool {
			for _, n := range c.Nodes {
				if addr := n.QUICAddr(); addr != "" && addr == a.Hub() {
					via = n.Index
				}
			}
			return via >= 0
		})
		return via
	}

	send(25)
	time.Sleep(hour)
	// The leader dies once.
	leader := c.WaitLeader(15 * time.Second)
	c.Kill(leader.Index)
	c.WaitLeader(15 * time.Second)
	send(25)
	time.Sleep(hour)
	c.Restart(leader.Index)
	send(25)
	// The node the agent reports to dies once, counts in its hands.
	via := nodeOf()
	send(25)
	c.Kill(via)
	send(25)
	time.Sleep(hour)
	c.Restart(via)
	send(25)
	time.Sleep(hour)

	// The containers' real starts, then the app's deletion ends them.
	mu.Lock()
	d := drv
	mu.Unlock()
	sts, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]time.Time{}
	for _, s := range sts {
		if s.App == "web" && s.State == driver.StateRunning {
			started[s.InstanceID] = s.StartedAt
		}
	}
	if len(started) != 2 || started[instances[0]].IsZero() || started[instances[1]].IsZero() {
		t.Fatalf("containers %v, want the two instances %v (none replaced)", started, instances)
	}
	deleteFrom := time.Now()
	retry("delete web", func() error {
		if err := api().Apps().Delete(ctx, "web", w); apitypes.StatusOf(err) != http.StatusNotFound {
			return err
		}
		return nil
	})
	deleteTo := time.Now()
	time.Sleep(2*hour + time.Second) // the deletion's hour ends and closes

	// Usage, bills and invoice read together: usage read again after them
	// must not have changed (late counts would change both).
	monthStart := time.Date(deleteFrom.Year(), deleteFrom.Month(), 1, 0, 0, 0, 0, time.UTC)
	month := monthStart.Format("2006-01")
	var rows []apitypes.UsageRow
	var bills []apitypes.Bill
	var inv *apitypes.Invoice
	var csvDoc []byte
	hubtest.WaitUntil(t, 40*time.Second, "usage final and stable, requests committed", func() error {
		cl := api()
		uq := client.UsageQuery{From: monthStart, To: time.Now().Add(time.Hour), Group: apitypes.UsageByHour}
		var err error
		if rows, err = cl.Usage(ctx, uq, q); err != nil {
			return err
		}
		var n int64
		for _, r := range rows {
			if !r.Final {
				return fmt.Errorf("the hour from %s is not closed", r.From.Format(time.RFC3339))
			}
			n += r.Requests
		}
		if n != sent {
			return fmt.Errorf("%d requests metered, %d sent", n, sent)
		}
		if bills, err = cl.Bills(ctx, "", "", q); err != nil {
			return err
		}
		if inv, err = cl.Invoice(ctx, month, q); err != nil {
			return err
		}
		if csvDoc, err = cl.InvoiceDocument(ctx, month, "csv", q); err != nil {
			return err
		}
		again, err := cl.Usage(ctx, uq, q)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(again, rows) {
			return fmt.Errorf("usage changed while reading the bills")
		}
		return nil
	})

	// Instance-seconds: from each container's start (the running report
	// follows it within seconds) to the deletion (counted to the delete
	// command, stamped between deleteFrom and deleteTo).
	var metered int64
	for _, r := range rows {
		metered += r.InstanceSeconds
	}
	var ranLo, ranHi float64
	for _, s := range started {
		ranLo += deleteFrom.Sub(s).Seconds()
		ranHi += deleteTo.Sub(s).Seconds()
	}
	// Each instance may start counting up to reportDelay after its
	// container started, and its second is truncated (at most 1 s more).
	const reportDelay = 5
	n := float64(len(started))
	if m := float64(metered); m < ranLo-reportDelay*n || m > ranHi+n {
		t.Fatalf("%d instance-seconds metered; the containers ran %.1f to %.1f s until the deletion", metered, ranLo, ranHi)
	}

	// The bills: price × usage per UTC day, each line rounded once.
	perDay := map[string]*[6]*big.Rat{}
	for _, r := range rows {
		day := r.From.UTC().Format("2006-01-02")
		u := perDay[day]
		if u == nil {
			u = &[6]*big.Rat{new(big.Rat), new(big.Rat), new(big.Rat), new(big.Rat), new(big.Rat), new(big.Rat)}
			perDay[day] = u
		}
		u[0].Add(u[0], new(big.Rat).SetFrac64(r.InstanceSeconds, 3600))
		u[1].Add(u[1], new(big.Rat).Quo(ratOf(t, string(r.CPUCoreSeconds)), big.NewRat(3600, 1)))
		u[2].Add(u[2], new(big.Rat).Quo(ratOf(t, string(r.MemoryGBSeconds)), big.NewRat(3600, 1)))
		u[3].Add(u[3], new(big.Rat).SetFrac64(r.Requests, 1_000_000))
		u[4].Add(u[4], new(big.Rat).SetFrac64(r.EgressBytes, 1_000_000_000))
		u[5].Add(u[5], new(big.Rat).SetFrac64(r.LogBytes, 1_000_000_000))
	}
	items := []string{"instance_hour", "cpu_core_hour", "memory_gb_hour", "requests_million", "egress_gb", "log_gb"}
	itemTotal := map[string]*big.Int{}
	for _, it := range items {
		itemTotal[it] = new(big.Int)
	}
	billed := map[string]bool{}
	for _, b := range bills {
		u := perDay[b.Day]
		want := new(big.Int)
		for i, it := range items {
			amount := new(big.Int)
			if u != nil {
				amount = cents(new(big.Rat).Mul(u[i], ratOf(t, billingPrices[it])))
			}
			var line *apitypes.BillLine
			for j := range b.Lines {
				if b.Lines[j].Item == it {
					line = &b.Lines[j]
				}
			}
			if line == nil || ratOf(t, line.Amount).Cmp(new(big.Rat).SetFrac(amount, big.NewInt(100))) != 0 {
				t.Fatalf("bill of %s, %s: %+v, want %s cents", b.Day, it, line, amount)
			}
			want.Add(want, amount)
			itemTotal[it].Add(itemTotal[it], amount)
		}
		if ratOf(t, b.Total).Cmp(new(big.Rat).SetFrac(want, big.NewInt(100))) != 0 || b.Plan != "metered" || b.Currency != "USD" {
			t.Fatalf("bill of %s: total %s, want %s cents", b.Day, b.Total, want)
		}
		billed[b.Day] = true
	}
	for day := range perDay {
		if !billed[day] {
			t.Fatalf("usage of %s has no bill (bills %+v)", day, bills)
		}
	}

	// The invoice: the daily amounts summed per item, and the fee for the
	// month's hours from the plan's start.
	planFrom := ten.PlanHistory[0].From
	monthEnd := monthStart.AddDate(0, 1, 0)
	share := big.NewRat(int64(monthEnd.Sub(planFrom)/time.Hour), int64(monthEnd.Sub(monthStart)/time.Hour))
	fee := cents(new(big.Rat).Mul(share, ratOf(t, billingFee)))
	wantTotal := new(big.Int).Set(fee)
	for _, it := range items {
		wantTotal.Add(wantTotal, itemTotal[it])
	}
	if inv.Tenant != "acme" || inv.Month != month || ratOf(t, inv.Total).Cmp(new(big.Rat).SetFrac(wantTotal, big.NewInt(100))) != 0 {
		t.Fatalf("invoice %+v, want a total of %s cents (fee %s)", inv, wantTotal, fee)
	}
	for _, l := range inv.Lines {
		want := fee
		if l.Item != "monthly_fee" {
			want = itemTotal[l.Item]
		}
		if want == nil || ratOf(t, l.Amount).Cmp(new(big.Rat).SetFrac(want, big.NewInt(100))) != 0 {
			t.Fatalf("invoice line %+v, want %v cents", l, want)
		}
	}
	// The CSV: the same lines, summing to the same total.
	recs, err := csv.NewReader(strings.NewReader(string(csvDoc))).ReadAll()
	if err != nil || len(recs) != 1+len(inv.Lines) {
		t.Fatalf("csv (%v): %s", err, csvDoc)
	}
	sum := new(big.Rat)
	for i, r := range recs[1:] {
		l := inv.Lines[i]
		if r[0] != "acme" || r[1] != month || r[3] != l.Item || r[7] != l.Amount || r[8] != "USD" {
			t.Fatalf("csv row %v, json line %+v", r, l)
		}
		sum.Add(sum, ratOf(t, r[7]))
	}
	if sum.Cmp(new(big.Rat).SetFrac(wantTotal, big.NewInt(100))) != 0 {
		t.Fatalf("csv amounts sum to %s, want %s cents", sum.FloatString(2), wantTotal)
	}
	t.Logf("%d requests, %d instance-seconds over %d closed hours; invoice %s USD", sent, metered, len(rows), inv.Total)
}

// ratOf parses a decimal string exactly.
func ratOf(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("%q is not a decimal", s)
	}
	return r
}

// cents rounds dollars to cents once, halves away from zero.
func cents(dollars *big.Rat) *big.Int {
	x := new(big.Rat).Mul(dollars, big.NewRat(100, 1))
	q, m := new(big.Int).QuoRem(x.Num(), x.Denom(), new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(x.Denom()) >= 0 {
		if x.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}
