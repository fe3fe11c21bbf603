package cloudsim

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Alibaba Cloud's RPC signature (SignatureVersion 1.0, HMAC-SHA1), as the
// verifying side does it: every parameter but Signature, sorted by name,
// each name and value percent-encoded (RFC 3986: space as %20, * as %2A,
// ~ kept), joined as a=b&c=d; StringToSign is
// METHOD&%2F&percentEncode(that); the signature is the base64 HMAC-SHA1
// of StringToSign keyed by the AccessKey secret followed by "&". Nothing
// here ever puts a secret or a computed signature into an answer (the
// StringToSign goes into SignatureDoesNotMatch's message, as ECS does).

const (
	ecsTimeFormat = "2006-01-02T15:04:05Z"
	// ecsWindow is how far a Timestamp may be from now, and how long a
	// SignatureNonce stays used.
	ecsWindow = 15 * time.Minute
)

// ecsParams are a request's parameters (query and form body together),
// each given once.
type ecsParams map[string]string

// ecsParseParams decodes an RPC request's parameters: the URL's query
// and, for a POST, a form-encoded body.
func ecsParseParams(r *http.Request, body []byte) (ecsParams, *ecsError) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, ecsErr("UnsupportedHTTPMethod", "The HTTP method %s is not supported; use GET or POST.", truncate(r.Method, 16))
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, ecsErr("InvalidParameter", "The query string is malformed.")
	}
	if r.Method == http.MethodPost && len(body) > 0 {
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != "application/x-www-form-urlencoded" {
			return nil, ecsErr("InvalidParameter", "The request body must be application/x-www-form-urlencoded.")
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, ecsErr("InvalidParameter", "The request body is malformed.")
		}
		for k, v := range form {
			q[k] = append(q[k], v...)
		}
	}
	p := make(ecsParams, len(q))
	for k, v := range q {
		if len(v) != 1 {
			return nil, ecsErr("InvalidParameter", "The parameter %q is given more than once.", truncate(k, 64))
		}
		p[k] = v[0]
	}
	return p, nil
}

// ecsPercentEncode is Alibaba Cloud's percent-encoding.
func ecsPercentEncode(s string) string {
	e := url.QueryEscape(s)
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(e)
}

// ecsStringToSign builds the string a request's signature covers.
func ecsStringToSign(method string, p ecsParams) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(ecsPercentEncode(k))
		b.WriteByte('=')
		b.WriteString(ecsPercentEncode(p[k]))
	}
	return method + "&" + ecsPercentEncode("/") + "&" + ecsPercentEncode(b.String())
}

// ecsSign signs a StringToSign with an AccessKey secret.
func ecsSign(stringToSign, secret string) string {
	h := hmac.New(sha1.New, []byte(secret+"&"))
	h.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// authenticate checks a request's signature parameters, its signature
// and that its nonce is new.
func (s *ECS) authenticate(method string, p ecsParams, now time.Time) *ecsError {
	for _, k := range []string{"AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"} {
		if p[k] == "" {
			return ecsErr("Missing"+k, "The input parameter %q that is mandatory for processing this request is not supplied.", k)
		}
	}
	if p["SignatureMethod"] != "HMAC-SHA1" {
		return ecsErr("InvalidSignatureMethod", "Specified signature method %q is not supported; use HMAC-SHA1.", truncate(p["SignatureMethod"], 32))
	}
	if p["SignatureVersion"] != "1.0" {
		return ecsErr("InvalidSignatureVersion", "Specified signature version %q is not supported; use 1.0.", truncate(p["SignatureVersion"], 32))
	}
	secret, ok := s.keys[p["AccessKeyId"]]
	if !ok {
		return ecsErr("InvalidAccessKeyId.NotFound", "")
	}
	ts, err := time.Parse(ecsTimeFormat, p["Timestamp"])
	if err != nil {
		return ecsErr("InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if d := now.Sub(ts); d > ecsWindow || d < -ecsWindow {
		return ecsErr("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	sts := ecsStringToSign(method, p)
	if !hmac.Equal([]byte(ecsSign(sts, secret)), []byte(p["Signature"])) {
		return ecsErr("SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:%s", sts)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.nonces.use(p["AccessKeyId"]+"\x00"+p["SignatureNonce"], now) {
		return ecsErr("SignatureNonceUsed", "")
	}
	return nil
}

// ecsNonces remembers the SignatureNonces of the last ecsWindow.
type ecsNonces struct {
	seen  map[string]bool
	queue []ecsNonce // in arrival order
}

type ecsNonce struct {
	key string
	at  time.Time
}

// use records key and reports whether it was new.
func (n *ecsNonces) use(key string, now time.Time) bool {
	expired := 0
	for expired < len(n.queue) && now.Sub(n.queue[expired].at) > ecsWindow {
		delete(n.seen, n.queue[expired].key)
		expired++
	}
	n.queue = slices.Delete(n.queue, 0, expired)
	if n.seen[key] {
		return false
	}
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	n.seen[key] = true
	n.queue = append(n.queue, ecsNonce{key: key, at: now})
	return true
}
