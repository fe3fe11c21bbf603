package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/hub/logstore"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

// BenchmarkLogFollow feeds an app's logs at WHARF_BENCH_FOLLOW_RATE
// lines/s (default 1,000) for WHARF_BENCH_FOLLOW_SECONDS (default 10) into a one-node hub's log store,
// the store the log service keeps agents' lines in, while one browser
// session follows them through the console's event stream over HTTP: the
// whole path a followed log view gets its lines by (the API's follow, the
// in-process API call, the stream). It reports the lines/s delivered and
// the lag from a line's store to its arrival at the client.
//
//	go test -run '^$' -bench BenchmarkLogFollow -benchtime 1x ./hub/console/
func BenchmarkLogFollow(b *testing.B) {
	secs, rate := benchEnv(b, "WHARF_BENCH_FOLLOW_SECONDS", 10), benchEnv(b, "WHARF_BENCH_FOLLOW_RATE", 1000)
	c := hubtest.New(b, 1, hubtest.Options{})
	base := c.Nodes[0].URL()
	ctx := context.Background()
	anon, _ := client.New(client.Config{Address: base})
	boot, err := anon.Bootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	api, _ := client.New(client.Config{Address: base, Token: boot.Token})
	if _, err := api.Tenants().Create(ctx, apitypes.TenantRequest{Name: "acme"}); err != nil {
		b.Fatal(err)
	}
	one := 1
	if _, err := api.Apps().Create(ctx, apitypes.AppSpec{Name: "web", Image: "web:1", Instances: &one}, &client.WriteOptions{Tenant: "acme"}); err != nil {
		b.Fatal(err)
	}
	hc := benchLogin(b, base, boot.Token)
	store := c.Nodes[0].Hub().LogStore()

	for i := 0; i < b.N; i++ {
		total := secs * rate
		instance := fmt.Sprintf("web-bench-%d", i)
		storedAt := make([]atomic.Int64, total+1)
		resp, err := hc.Get(base + "/ui/apps/acme/web/logs/stream")
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("open the stream: %v %v", resp, err)
		}
		lags := make([]time.Duration, 0, total)
		var first, last time.Time
		got := 0
		done := make(chan error, 1)
		go func() {
			br := bufio.NewReaderSize(resp.Body, 64<<10)
			for got < total {
				l, err := br.ReadString('\n')
				if err != nil {
					done <- err
					return
				}
				data, ok := strings.CutPrefix(l, "data: ")
				if !ok || data == "{}\n" {
					continue
				}
				now := time.Now()
				var ll apitypes.LogLine
				if err := json.Unmarshal([]byte(data), &ll); err != nil {
					done <- err
					return
				}
				if ll.Instance != instance {
					continue // an earlier round's, in the stream's tail
				}
				seq, _ := strconv.Atoi(strings.Fields(ll.Line)[0])
				if at := storedAt[seq].Load(); at > 0 {
					lags = append(lags, now.Sub(time.Unix(0, at)))
				}
				if got == 0 {
					first = now
				}
				last = now
				got++
			}
			done <- nil
		}()
		// Give the stream its start (the reset event) before the feed.
		time.Sleep(500 * time.Millisecond)
		b.ResetTimer()
		start := time.Now()
		seq := 0
		tick := time.NewTicker(10 * time.Millisecond)
		for seq < total {
			<-tick.C
			// Catch up to the schedule: rate lines per second since start.
			due := min(total, int(time.Since(start).Seconds()*float64(rate)))
			if due <= seq {
				continue
			}
			recs := make([]logstore.Record, 0, due-seq)
			now := time.Now()
			for seq < due {
				seq++
				recs = append(recs, logstore.Record{Time: now, Tenant: "acme", App: "web", Instance: instance, Stream: "stdout",
					Seq: uint64(seq), Line: fmt.Sprintf("%d a log line of about the usual length for a web app", seq), Primary: true})
			}
			if _, err := store.Append(recs); err != nil {
				b.Fatal(err)
			}
			stored := time.Now().UnixNano()
			for _, r := range recs {
				storedAt[r.Seq].Store(stored)
			}
		}
		tick.Stop()
		fed := time.Since(start)
		select {
		case err := <-done:
			if err != nil {
				b.Fatalf("reading the stream: %v", err)
			}
		case <-time.After(30 * time.Second):
			resp.Body.Close()
			<-done
		}
		b.StopTimer()
		resp.Body.Close()
		if got == 0 {
			b.Fatal("no line arrived")
		}
		slices.Sort(lags)
		pct := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(total)/fed.Seconds(), "fed-lines/s")
		b.ReportMetric(float64(got)/last.Sub(first).Seconds(), "delivered-lines/s")
		b.ReportMetric(float64(total-got), "lost-lines")
		b.ReportMetric(pct(0.5), "p50-lag-ms")
		b.ReportMetric(pct(0.99), "p99-lag-ms")
		b.ReportMetric(pct(1), "max-lag-ms")
	}
}

// benchEnv reads a positive whole number from the environment, or def.
func benchEnv(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a whole number above 0", name, v)
	}
	return n
}

// benchLogin signs in to the console through its form and returns a
// client that carries the session cookie.
func benchLogin(b *testing.B, base, token string) *http.Client {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.Get(base + "/ui/login")
	if err != nil {
		b.Fatal(err)
	}
	page := new(strings.Builder)
	_, _ = bufio.NewReader(resp.Body).WriteTo(page)
	resp.Body.Close()
	m := csrfRE.FindStringSubmatch(page.String())
	if m == nil {
		b.Fatal("no CSRF field on the login page")
	}
	resp, err = hc.PostForm(base+"/ui/login", url.Values{"csrf": {m[1]}, "token": {token}})
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("login: %v %v", resp, err)
	}
	resp.Body.Close()
	return hc
}
