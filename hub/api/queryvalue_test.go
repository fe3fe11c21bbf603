package api

import (
	"net/http"
	"net/url"
	"testing"
)

// queryValue answers as url.Values.Get does, for queries of every shape.
func TestQueryValueMatchesURLValues(t *testing.T) {
	for _, raw := range []string{
		"", "tenant=acme", "tenant=acme&cas=4", "cas=4&tenant=acme&tenant=other",
		"tenant=", "tenant", "&&tenant=a&", "tenant=a%20b", "tenant=a+b", "ten%61nt=x",
		"tenant=%zz&tenant=ok", "tenant=a;b&tenant=c", "t;x=1&tenant=d", "%zz=1&tenant=e",
		"tenant=a=b", "=x&tenant=f", "tenant=%E2%82%AC",
	} {
		for _, key := range []string{"tenant", "cas", "", "x"} {
			r := &http.Request{URL: &url.URL{RawQuery: raw}}
			if got, want := queryValue(r, key), r.URL.Query().Get(key); got != want {
				t.Errorf("query %q, key %q: %q, want %q", raw, key, got, want)
			}
		}
	}
}

func FuzzQueryValue(f *testing.F) {
	f.Add("tenant=acme&cas=4", "tenant")
	f.Add("a=%zz;&a=b+c", "a")
	f.Fuzz(func(t *testing.T, raw, key string) {
		r := &http.Request{URL: &url.URL{RawQuery: raw}}
		if got, want := queryValue(r, key), r.URL.Query().Get(key); got != want {
			t.Fatalf("query %q, key %q: %q, want %q", raw, key, got, want)
		}
	})
}
