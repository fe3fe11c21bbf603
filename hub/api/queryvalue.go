package api

import (
	"net/http"
	"net/url"
	"strings"
)

// queryValue returns r's first value of query parameter key, as
// r.URL.Query().Get(key) does, without building the map of every
// parameter: a write's handlers look up two or three parameters, and
// parsing the whole query for each was a thousand bytes of garbage per
// write.
func queryValue(r *http.Request, key string) string {
	q := r.URL.RawQuery
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue // url.ParseQuery skips these too
		}
		k, v, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != key {
			continue
		}
		if v, err := url.QueryUnescape(v); err == nil {
			return v
		}
	}
	return ""
}
