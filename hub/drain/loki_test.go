package drain

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLoki decodes push requests strictly and answers with the statuses
// queued in replies (then 204).
type fakeLoki struct {
	t *testing.T

	mu      sync.Mutex
	replies []int
	pushes  []lokiPushReq
	bodies  [][]byte
	paths   []string
	auth    []string
}

// lokiPushReq is Loki's push body, written down here independently of the
// sender's types.
type lokiPushReq struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values [][]string        `json:"values"`
	} `json:"streams"`
}

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("got %s with Content-Type %q, want POST with application/json", r.Method, r.Header.Get("Content-Type"))
	}
	var push lokiPushReq
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&push); err != nil || dec.More() {
		f.t.Errorf("push body %q: %v", body, err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	user, pass, ok := r.BasicAuth()
	f.mu.Lock()
	f.pushes = append(f.pushes, push)
	f.bodies = append(f.bodies, body)
	f.paths = append(f.paths, r.URL.Path)
	if ok {
		f.auth = append(f.auth, user+":"+pass)
	} else {
		f.auth = append(f.auth, "")
	}
	status := http.StatusNoContent
	if len(f.replies) > 0 {
		status, f.replies = f.replies[0], f.replies[1:]
	}
	f.mu.Unlock()
	if status >= 300 {
		http.Error(w, fmt.Sprintf("loki says %d", status), status)
		return
	}
	w.WriteHeader(status)
}

func startLoki(t *testing.T, replies ...int) (*fakeLoki, *httptest.Server) {
	f := &fakeLoki{t: t, replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func newSender(t testing.TB, raw string, o Options) Sender {
	t.Helper()
	target, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(target, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLokiPush(t *testing.T) {
	f, srv := startLoki(t)
	s := newSender(t, "loki+http://robot:s3cr%2Ft@"+srv.Listener.Addr().String(), Options{})
	lines := testLines()
	if err := s.Send(context.Background(), lines); err != nil {
		t.Fatal(err)
	}
	if len(f.pushes) != 1 {
		t.Fatalf("%d pushes, want 1", len(f.pushes))
	}
	if f.paths[0] != "/loki/api/v1/push" {
		t.Errorf("path %q", f.paths[0])
	}
	if f.auth[0] != "robot:s3cr/t" {
		t.Errorf("basic auth %q, want robot:s3cr/t", f.auth[0])
	}

	// Each label set once, in order of first appearance, with its lines in
	// order.
	type labels struct{ tenant, app, instance, stream string }
	var order []labels
	want := map[labels][][]string{}
	for _, l := range lines {
		k := labels{l.Tenant, l.App, l.Instance, l.Stream}
		if _, ok := want[k]; !ok {
			order = append(order, k)
		}
		want[k] = append(want[k], []string{strconv.FormatInt(l.Time.UnixNano(), 10), l.Line})
	}
	push := f.pushes[0]
	if len(push.Streams) != len(order) {
		t.Fatalf("%d streams, want %d", len(push.Streams), len(order))
	}
	for i, st := range push.Streams {
		k := labels{st.Stream["tenant"], st.Stream["app"], st.Stream["instance"], st.Stream["stream"]}
		if len(st.Stream) != 4 || k != order[i] {
			t.Errorf("stream %d labels %v, want %v", i, st.Stream, order[i])
		}
		if !reflect.DeepEqual(st.Values, want[k]) {
			t.Errorf("stream %v values\n got %.200q\nwant %.200q", k, st.Values, want[k])
		}
	}
	// The timestamps are nanoseconds, not rounded.
	if got := push.Streams[0].Values[0][0]; got != "1741961366535897932" {
		t.Errorf("first timestamp %s, want 1741961366535897932", got)
	}
}

func TestLokiStatus(t *testing.T) {
	for _, tc := range []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{http.StatusNoContent, true, false},
		{http.StatusOK, true, false},
		{http.StatusBadRequest, false, true},
		{http.StatusUnauthorized, false, true},
		{http.StatusRequestEntityTooLarge, false, true},
		{http.StatusTooManyRequests, false, false},
		{http.StatusInternalServerError, false, false},
		{http.StatusServiceUnavailable, false, false},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			_, srv := startLoki(t, tc.status)
			s := newSender(t, "loki+http://u:hunter2@"+srv.Listener.Addr().String(), Options{})
			err := s.Send(context.Background(), testLines()[:2])
			if (err == nil) != tc.ok {
				t.Fatalf("Send: %v, want ok=%v", err, tc.ok)
			}
			if err == nil {
				return
			}
			if errors.Is(err, ErrPermanent) != tc.permanent {
				t.Errorf("Send: %v; permanent=%v, want %v", err, errors.Is(err, ErrPermanent), tc.permanent)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tc.status)) || !strings.Contains(err.Error(), "loki says") {
				t.Errorf("error %q should name the status and the server's reason", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestLokiNetworkErrorIsTemporary(t *testing.T) {
	_, srv := startLoki(t)
	addr := srv.Listener.Addr().String()
	srv.Close()
	s := newSender(t, "loki+http://u:hunter2@"+addr, Options{Timeout: 2 * time.Second})
	err := s.Send(context.Background(), testLines()[:1])
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("Send to a closed port: %v, want a temporary error", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the password", err)
	}
}

func TestLokiRetriesWithDeliver(t *testing.T) {
	f, srv := startLoki(t, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	s := newSender(t, "loki+http://"+srv.Listener.Addr().String()+"/custom/push", Options{})
	var attempts []int
	err := Deliver(testContext(t), s, testLines(), time.Millisecond, 4*time.Millisecond, func(n int, err error) {
		attempts = append(attempts, n)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(attempts, []int{1, 2}) {
		t.Errorf("failed attempts %v, want [1 2]", attempts)
	}
	if len(f.bodies) != 3 || !bytes.Equal(f.bodies[0], f.bodies[2]) {
		t.Errorf("%d pushes; a retry must resend the same batch", len(f.bodies))
	}
	if f.paths[0] != "/custom/push" {
		t.Errorf("path %q, want /custom/push", f.paths[0])
	}
}

func TestLokiPermanentStopsDeliver(t *testing.T) {
	f, srv := startLoki(t, http.StatusBadRequest)
	s := newSender(t, "loki+http://"+srv.Listener.Addr().String(), Options{})
	calls := 0
	err := Deliver(testContext(t), s, testLines(), time.Millisecond, time.Millisecond, func(int, error) { calls++ })
	if !errors.Is(err, ErrPermanent) || calls != 1 || len(f.pushes) != 1 {
		t.Errorf("Deliver: %v after %d failures and %d pushes, want ErrPermanent after 1", err, calls, len(f.pushes))
	}
}

func TestLokiHTTPS(t *testing.T) {
	f := &fakeLoki{t: t}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	s := newSender(t, "loki+https://"+srv.Listener.Addr().String(), Options{TLSConfig: &tls.Config{RootCAs: roots}})
	if err := s.Send(context.Background(), testLines()[:1]); err != nil {
		t.Fatal(err)
	}
	if len(f.pushes) != 1 {
		t.Errorf("%d pushes, want 1", len(f.pushes))
	}

	// Without the CA the certificate is refused.
	_, other := testTLS(t)
	s = newSender(t, "loki+https://"+srv.Listener.Addr().String(), Options{TLSConfig: other})
	var unknown x509.UnknownAuthorityError
	if err := s.Send(context.Background(), testLines()[:1]); !errors.As(err, &unknown) {
		t.Errorf("Send with the wrong CA: %v, want an unknown authority error", err)
	}
}
