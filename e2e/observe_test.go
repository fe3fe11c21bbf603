package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/wharf-platform/wharf/agent"
	"github.com/wharf-platform/wharf/agent/driver/drivertest"
	"github.com/wharf-platform/wharf/hub/alert"
	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// sink collects what the drain receivers got: numbered lines and ids.
type sink struct {
	mu    sync.Mutex
	lines map[string]map[int]int // receiver → line number → times
	ids   map[string]int         // Elasticsearch _id → times
	errs  []string
}

func (s *sink) add(recv, line string) {
	var n int
	if _, err := fmt.Sscanf(line, "line %d", &n); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines[recv] == nil {
		s.lines[recv] = map[int]int{}
	}
	s.lines[recv][n]++
}

func (s *sink) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func (s *sink) count(recv string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines[recv])
}

// TestLogDrainsAndAlerts: an app's lines reach a syslog receiver (RFC 5424
// in RFC 6587 octet-counted frames, decoded by go-syslog's parsers), a
// Loki push endpoint and an Elasticsearch _bulk endpoint, each line once
// with a deterministic _id; a drain nobody listens to is reported as an
// event the tenant sees. An alert rule on restarts fires when the
// instance exits and resolves after its window, as events and as signed
// webhook notifications the receiver verifies.
func TestLogDrainsAndAlerts(t *testing.T) {
	c, admin, _ := newCluster(t, hubtest.Options{}, "p", "acme")
	ctx := context.Background()
	jt := joinToken(t, admin, apitypes.JoinTokenRequest{Pool: "p"})
	dir := t.TempDir()
	runAgent(t, agent.Config{Hubs: hubs(c), Token: jt.Token, DataDir: dir, Name: "d", NewDriver: execDriver(t, dir)})
	w, q := &client.WriteOptions{Tenant: "acme"}, &client.QueryOptions{Tenant: "acme"}
	bin := drivertest.BuildTestApp(t)
	const total = 100
	spec := apitypes.AppSpec{Name: "talk", Command: []string{bin}, Instances: intp(0), Ports: []apitypes.Port{{ContainerPort: 8080}},
		Env:    map[string]string{"TESTAPP_PRINT": "100", "TESTAPP_PRINT_COUNT": fmt.Sprint(total)},
		Health: &apitypes.Health{HTTP: "/healthz", Interval: apitypes.Duration(200 * time.Millisecond)}}
	hubtest.WaitFor(t, 20*time.Second, "app created", func() bool {
		_, err := admin.Apps().Create(ctx, spec, w)
		return err == nil
	})
	t.Cleanup(func() { scaleToZero(t, admin, "talk") })
	got := &sink{lines: map[string]map[int]int{}, ids: map[string]int{}}

	// Syslog over TCP, decoded by a real RFC 5424 / RFC 6587 parser.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				octetcounting.NewParser(syslog.WithMachineOptions(rfc5424.WithCompliantMsg()), syslog.WithListener(func(r *syslog.Result) {
					if r.Error != nil {
						got.fail("syslog: %v", r.Error)
						return
					}
					m := r.Message.(*rfc5424.SyslogMessage)
					if m.Appname == nil || *m.Appname != "acme.talk" || m.ProcID == nil || !strings.HasPrefix(*m.ProcID, "talk-") ||
						m.MsgID == nil || *m.MsgID != "stdout" || *m.Priority != 14 || m.StructuredData == nil {
						got.fail("syslog header: %+v", m)
						return
					}
					if _, ok := (*m.StructuredData)["wharf@32473"]["seq"]; !ok {
						got.fail("syslog: no seq in %+v", *m.StructuredData)
					}
					got.add("syslog", *m.Message)
				})).Parse(conn)
			}()
		}
	}()
	// Loki's push API.
	loki := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var push struct {
			Streams []struct {
				Stream map[string]string `json:"stream"`
				Values [][2]string       `json:"values"`
			} `json:"streams"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if r.URL.Path != "/loki/api/v1/push" || r.Header.Get("Content-Type") != "application/json" || dec.Decode(&push) != nil {
			got.fail("loki: bad request %s %s", r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "bad", 400)
			return
		}
		for _, s := range push.Streams {
			if s.Stream["tenant"] != "acme" || s.Stream["app"] != "talk" || s.Stream["stream"] != "stdout" {
				got.fail("loki labels %v", s.Stream)
			}
			for _, v := range s.Values {
				if !regexp.MustCompile(`^\d{19}$`).MatchString(v[0]) {
					got.fail("loki timestamp %q", v[0])
				}
				got.add("loki", v[1])
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(loki.Close)
	// Elasticsearch's _bulk API: create actions with ids.
	es := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/logs-talk/_bulk" && r.URL.Path != "/_bulk" || r.Header.Get("Content-Type") != "application/x-ndjson" {
			got.fail("es: bad request %s %s", r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "bad", 400)
			return
		}
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var items []string
		for sc.Scan() {
			var action struct {
				Create struct {
					Index string `json:"_index"`
					ID    string `json:"_id"`
				} `json:"create"`
			}
			if err := json.Unmarshal(sc.Bytes(), &action); err != nil || action.Create.ID == "" || action.Create.Index != "logs-talk" || !sc.Scan() {
				got.fail("es action %q", sc.Text())
				http.Error(w, "bad", 400)
				return
			}
			var doc struct {
				Message string `json:"message"`
				Seq     uint64 `json:"seq"`
			}
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil || doc.Seq == 0 {
				got.fail("es doc %q", sc.Text())
			}
			if strings.HasPrefix(doc.Message, "line ") {
				got.mu.Lock()
				got.ids[action.Create.ID]++
				got.mu.Unlock()
			}
			got.add("es", doc.Message)
			items = append(items, `{"create":{"status":201}}`)
		}
		fmt.Fprintf(w, `{"errors":false,"items":[%s]}`, strings.Join(items, ","))
	}))
	t.Cleanup(es.Close)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close() // nobody listens there

	for _, u := range []string{"syslog://" + ln.Addr().String(), "loki+" + loki.URL, "es+" + es.URL + "/logs-talk", "syslog://" + deadAddr} {
		if _, err := admin.LogDrains().Add(ctx, "talk", u, w); err != nil {
			t.Fatalf("add drain %s: %v", u, err)
		}
	}
	if _, err := admin.LogDrains().Add(ctx, "talk", "syslog://no-port.example.com", w); !isStatus(err, http.StatusBadRequest) {
		t.Fatalf("drain without a port: %v", err)
	}
	if ds, _, err := admin.LogDrains().List(ctx, "talk", q); err != nil || len(ds) != 4 {
		t.Fatalf("drains: %+v %v", ds, err)
	}

	// Alerts: restarts above 0 within 10 s, with a signed webhook.
	const secret = "hook-secret"
	notes := make(chan alert.Notification, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := alert.Verify(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			got.fail("webhook signature: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if err := alert.Verify("wrong", r.Header, body, time.Now(), time.Minute); err == nil {
			got.fail("webhook: a wrong secret verified")
		}
		var n alert.Notification
		if err := json.Unmarshal(body, &n); err != nil {
			got.fail("webhook body: %v", err)
		}
		notes <- n
	}))
	t.Cleanup(hook.Close)
	rule, err := admin.Alerts().Add(ctx, apitypes.AlertRule{App: "talk", Metric: "restarts", Above: "0", For: "10s", Webhook: hook.URL, Secret: secret}, w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Alerts().Add(ctx, apitypes.AlertRule{App: "talk", Metric: "cpu", Above: "180%"}, w); !isStatus(err, http.StatusBadRequest) {
		t.Fatalf("a rule above 100%%: %v", err)
	}

	if _, err := admin.Apps().Scale(ctx, "talk", 1, w); err != nil {
		t.Fatal(err)
	}
	for _, recv := range []string{"syslog", "loki", "es"} {
		hubtest.WaitUntil(t, 30*time.Second, recv+" got every line", func() error {
			if n := got.count(recv); n != total {
				got.mu.Lock()
				defer got.mu.Unlock()
				return fmt.Errorf("%s has %d of %d lines; receivers' complaints so far: %v", recv, n, total, got.errs)
			}
			return nil
		})
	}
	got.mu.Lock()
	for recv, m := range got.lines {
		for n, k := range m {
			if k != 1 {
				t.Errorf("%s got line %d %d times", recv, n, k)
			}
		}
	}
	if len(got.ids) != total {
		t.Errorf("es: %d distinct ids for %d lines", len(got.ids), total)
	}
	if len(got.errs) > 0 {
		t.Errorf("receivers: %v", got.errs)
	}
	got.mu.Unlock()
	tenant, _ := client.New(client.Config{Address: c.Nodes[1].URL(), Token: tenantToken(t, admin, "acme")})
	hubtest.WaitFor(t, 30*time.Second, "the dead drain reported as an event the tenant sees", func() bool {
		evs, _, err := tenant.Events(ctx, 0, nil)
		for _, e := range evs {
			if e.Type == "drain.failed" && e.Subject == "acme/talk" && strings.Contains(e.Message, deadAddr) {
				return true
			}
		}
		if err != nil {
			t.Logf("events: %v", err)
		}
		return false
	})

	// The instance exits: a restart, the rule fires, then resolves.
	inst := onlyInstance(t, admin, "talk")
	exited := time.Now()
	if resp, err := http.Get("http://" + inst.Address + "/exit?code=3"); err == nil {
		resp.Body.Close()
	}
	wait := func(state string) alert.Notification {
		t.Helper()
		select {
		case n := <-notes:
			if n.State != state || n.RuleID != rule.ID || n.App != "talk" || n.Metric != "restarts" {
				t.Fatalf("notification %+v, want %s of %s", n, state, rule.ID)
			}
			return n
		case <-time.After(60 * time.Second):
			is, _, _ := admin.Apps().Instances(ctx, "talk", q)
			rs, _, _ := admin.Alerts().List(ctx, q)
			evs, _, _ := admin.Events(ctx, 0, nil)
			got.mu.Lock()
			defer got.mu.Unlock()
			t.Fatalf("no %s notification; instances %+v; rules %+v; receiver errors %v; events %+v", state, is, rs, got.errs, evs)
		}
		return alert.Notification{}
	}
	fired := wait("firing")
	if fired.Value < 1 {
		t.Fatalf("fired with %v restarts", fired.Value)
	}
	resolved := wait("resolved")
	if resolved.At.Sub(exited) < 10*time.Second {
		t.Fatalf("resolved %s after the exit, before the 10s window passed", resolved.At.Sub(exited))
	}
	hubtest.WaitFor(t, 20*time.Second, "alert events", func() bool {
		evs, _, _ := tenant.Events(ctx, 0, nil)
		var f, r bool
		for _, e := range evs {
			f = f || e.Type == "alert.firing" && strings.Contains(e.Message, rule.ID)
			r = r || e.Type == "alert.resolved" && strings.Contains(e.Message, rule.ID)
		}
		return f && r
	})
}

// tenantToken makes a developer token of tenant.
func tenantToken(t *testing.T, admin *client.Client, tenant string) string {
	t.Helper()
	tok, err := admin.Tokens().Create(context.Background(), apitypes.TokenRequest{Name: "dev", Role: apitypes.RoleDeveloper, Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Secret
}
