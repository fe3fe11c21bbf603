package cloudsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4, as the verifying side does it: rebuild the
// canonical request from what arrived, sign it with the secret of the
// claimed key id, and compare. Nothing here ever puts a secret or a
// computed signature into an answer.

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateForm  = "20060102T150405Z"
	maxSkew      = 15 * time.Minute
)

// sigParts is a parsed Authorization header.
type sigParts struct {
	keyID, date, region, service string
	signedHeaders                []string
	signature                    string
}

func parseAuthorization(h string) (sigParts, bool) {
	var p sigParts
	algo, rest, ok := strings.Cut(h, " ")
	if !ok || algo != sigAlgorithm {
		return p, false
	}
	var cred, signed string
	for _, f := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return p, false
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			p.signature = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signed == "" || len(p.signature) != 64 {
		return p, false
	}
	p.keyID, p.date, p.region, p.service = scope[0], scope[1], scope[2], scope[3]
	p.signedHeaders = strings.Split(signed, ";")
	if !sort.StringsAreSorted(p.signedHeaders) {
		return p, false
	}
	for _, name := range p.signedHeaders {
		if name == "" || name != strings.ToLower(name) {
			return p, false
		}
	}
	return p, true
}

// verifySignature checks r's SigV4 signature against keys; body is r's
// body, already read.
func verifySignature(r *http.Request, body []byte, keys map[string]string, region string, now time.Time) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return newError("AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	p, ok := parseAuthorization(auth)
	if !ok {
		return newError("IncompleteSignature", "The request signature does not conform to AWS standards.")
	}
	secret, ok := keys[p.keyID]
	if !ok {
		return newError("AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateForm, amzDate)
	if err != nil || p.date != amzDate[:8] {
		return newError("IncompleteSignature", "X-Amz-Date is missing or does not match the credential scope.")
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return newError("RequestExpired", "Request has expired. Timestamp date is %s.", amzDate)
	}
	if p.region != region {
		return newError("AuthFailure", "Credential should be scoped to a valid region, not '%s'.", truncate(p.region, 32))
	}
	if p.service != "ec2" {
		return newError("AuthFailure", "Credential should be scoped to correct service: 'ec2'.")
	}
	hasHost := false
	for _, h := range p.signedHeaders {
		hasHost = hasHost || h == "host"
	}
	if !hasHost {
		return newError("IncompleteSignature", "The host header must be signed.")
	}
	payload := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(payload[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return newError("SignatureDoesNotMatch", "The provided x-amz-content-sha256 header does not match what was computed.")
	}
	want := computeSignature(r, p, amzDate, payloadHash, secret)
	if !hmac.Equal([]byte(want), []byte(p.signature)) {
		return newError("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}

// computeSignature is the signature of r for the scope and signed headers
// in p.
func computeSignature(r *http.Request, p sigParts, amzDate, payloadHash, secret string) string {
	creq := canonicalRequest(r, p.signedHeaders, payloadHash)
	scope := p.date + "/" + p.region + "/" + p.service + "/aws4_request"
	sum := sha256.Sum256([]byte(creq))
	toSign := sigAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	return hex.EncodeToString(hmacSHA256(signingKey(secret, p.date, p.region, p.service), toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// canonicalRequest is SigV4's canonical form of r (the path encoded twice,
// as for every service but S3).
func canonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(awsEscape(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return strconv.FormatInt(r.ContentLength, 10)
	}
	vals := r.Header.Values(http.CanonicalHeaderKey(name))
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return raw // cannot match what a signer computed; the signature fails
	}
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, awsEscape(k, true)+"="+awsEscape(v, true))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// awsEscape percent-encodes every byte but the unreserved ones (and '/'
// unless encodeSlash).
func awsEscape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
