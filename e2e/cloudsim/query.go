package cloudsim

import (
	"encoding/xml"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxMembers bounds the N of a Prefix.N parameter, like EC2's limits on
// list lengths, so that no request makes the simulator allocate much.
const maxMembers = 1000

// parseForm decodes a Query API request: the URL's query and, for a
// POST, the form-encoded body.
func parseForm(r *http.Request, body []byte) (url.Values, *apiError) {
	form, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newError("MalformedQueryString", "The query string is malformed.")
	}
	if r.Method == http.MethodPost && len(body) > 0 {
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != "application/x-www-form-urlencoded" {
			return nil, newError("InvalidParameterValue", "Content-Type must be application/x-www-form-urlencoded.")
		}
		b, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, newError("MalformedQueryString", "The request body is not form-encoded.")
		}
		for k, v := range b {
			form[k] = append(form[k], v...)
		}
	} else if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, &apiError{Status: http.StatusMethodNotAllowed, Code: "InvalidHttpRequest", Message: "The HTTP method is not allowed."}
	}
	return form, nil
}

// members returns the Ns for which some parameter prefix.N or
// prefix.N.* is present, in increasing order.
func members(form url.Values, prefix string) ([]int, *apiError) {
	seen := map[int]bool{}
	p := prefix + "."
	for k := range form {
		rest, ok := strings.CutPrefix(k, p)
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > maxMembers || num[0] == '0' || num[0] == '+' {
			return nil, newError("InvalidParameterValue", "Invalid index in parameter %s.", truncate(k, 64))
		}
		seen[n] = true
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// list returns the values of prefix.1, prefix.2, ... in order of N.
func list(form url.Values, prefix string) ([]string, *apiError) {
	ns, aerr := members(form, prefix)
	if aerr != nil {
		return nil, aerr
	}
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		k := prefix + "." + strconv.Itoa(n)
		if _, ok := form[k]; !ok {
			return nil, newError("InvalidParameterValue", "Unexpected parameter below %s.", truncate(k, 64))
		}
		out = append(out, form.Get(k))
	}
	return out, nil
}

// filter is one Filter.N of a Describe call.
type filter struct {
	name   string
	values []string
}

func filters(form url.Values) ([]filter, *apiError) {
	ns, aerr := members(form, "Filter")
	if aerr != nil {
		return nil, aerr
	}
	var out []filter
	for _, n := range ns {
		p := "Filter." + strconv.Itoa(n)
		name := form.Get(p + ".Name")
		if name == "" {
			return nil, newError("InvalidParameterValue", "%s.Name is missing.", p)
		}
		values, aerr := list(form, p+".Value")
		if aerr != nil {
			return nil, aerr
		}
		out = append(out, filter{name: name, values: values})
	}
	return out, nil
}

// match is EC2's filter wildcard match: * is any run, ? any one
// character.
func match(pattern, s string) bool {
	// Iterative glob with backtracking to the last *: linear in practice
	// and never recursive, whatever the pattern.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if match(p, s) {
			return true
		}
	}
	return false
}

// response is an action's answer; writeXML fills in the namespace and
// request id.
type response interface{ setHeader(reqID string) }

// respHeader starts every answer.
type respHeader struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func (h *respHeader) setHeader(reqID string) {
	h.Xmlns = EC2Namespace
	h.RequestID = reqID
}

func writeXML(w http.ResponseWriter, reqID string, resp response) {
	resp.setHeader(reqID)
	b, err := xml.Marshal(resp)
	if err != nil {
		writeError(w, reqID, newError("InternalError", "%s", defaultMessages["InternalError"]))
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	b, err := xml.Marshal(errorResponse{Errors: []xmlError{{Code: e.Code, Message: e.Message}}, RequestID: reqID})
	if err != nil {
		b = []byte("<Response><Errors><Error><Code>InternalError</Code></Error></Errors></Response>")
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}
