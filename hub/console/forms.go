package console

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// form is an action form as typed and what is wrong with it: a failed
// action renders its page again with the form kept and each error next
// to its field ("general" for an error of no one field).
type form struct {
	V      map[string]string
	Errors map[string]string
}

// readForm keeps the named fields of a posted form, trimmed.
func readForm(r *http.Request, fields ...string) form {
	f := form{V: map[string]string{}, Errors: map[string]string{}}
	for _, k := range fields {
		f.V[k] = strings.TrimSpace(r.PostForm.Get(k))
	}
	return f
}

// blank is a form with nothing typed yet.
func blank(values map[string]string) form {
	if values == nil {
		values = map[string]string{}
	}
	return form{V: values, Errors: map[string]string{}}
}

// failed reports whether the form has errors.
func (f form) failed() bool { return len(f.Errors) > 0 }

// apiError puts what the API refused next to the field it names, mapped
// to the form's own field names by fields (API field -> form field);
// the rest goes under "general".
func (f form) apiError(err error, fields map[string]string) {
	var ae *apitypes.Error
	if errors.As(err, &ae) && ae.Field != "" {
		name := ae.Field
		if i := strings.IndexAny(name, "[."); i > 0 && fields[name] == "" {
			name = name[:i]
		}
		if ff, ok := fields[name]; ok {
			f.Errors[ff] = ae.Message
			return
		}
		if _, ok := f.V[name]; ok {
			f.Errors[name] = ae.Message
			return
		}
	}
	f.Errors["general"] = errText(err)
}

// number reads a whole number field ("" is zero), or records why not.
func (f form) number(field string, min int) int {
	s := f.V[field]
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		f.Errors[field] = field + " must be a whole number, " + strconv.Itoa(min) + " or more"
		return 0
	}
	return n
}

// list reads a comma- or space-separated field.
func (f form) list(field string) []string {
	return strings.FieldsFunc(f.V[field], func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
}

// jsonObject reads a field that holds a JSON object, or KEY=VALUE pairs
// (one a line or comma-separated) made into one; "" is nil.
func (f form) jsonObject(field string) []byte {
	s := strings.TrimSpace(f.V[field])
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "{") {
		return []byte(s)
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || strings.TrimSpace(k) == "" {
			f.Errors[field] = field + " is a JSON object or KEY=VALUE pairs"
			return nil
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(strings.TrimSpace(k)))
		b.WriteByte(':')
		b.WriteString(strconv.Quote(strings.TrimSpace(v)))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// redirect answers a successful action: back to a page, as a fresh GET.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// failCode is the status of a page that shows a refused form: the API's
// status for its errors, 422 for what the console found itself.
func failCode(err error) int {
	if err != nil {
		return statusOf(err)
	}
	return http.StatusUnprocessableEntity
}

// pageRows is how many rows a long list shows at once.
const pageRows = 100

// pager is one page of a long list, with links to its neighbours.
type pager struct {
	Page, Pages, Total, From, To int
	Prev, Next                   string
}

// paginate returns the page of items that query q asks for (page=N, from
// 1), with links that keep q's other parameters.
func paginate[T any](items []T, path string, q url.Values) ([]T, pager) {
	p := pager{Total: len(items), Pages: (len(items) + pageRows - 1) / pageRows}
	if p.Pages == 0 {
		p.Pages = 1
	}
	p.Page, _ = strconv.Atoi(q.Get("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	lo := (p.Page - 1) * pageRows
	hi := min(lo+pageRows, len(items))
	p.From, p.To = lo+1, hi
	if len(items) == 0 {
		p.From = 0
	}
	link := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(n))
		return path + "?" + v.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return items[lo:hi], p
}

// appList is the apps page's filter and page.
type appList struct {
	Q       string
	Matched int
	Pager   pager
}

// pageOfApps filters apps by q (a part of "tenant/name") and returns the
// page that query asks for.
func pageOfApps(apps []apitypes.App, query url.Values) ([]apitypes.App, appList) {
	l := appList{Q: strings.TrimSpace(query.Get("q"))}
	match := apps
	if l.Q != "" {
		match = nil
		for _, a := range apps {
			if strings.Contains(a.Tenant+"/"+a.Name, l.Q) {
				match = append(match, a)
			}
		}
	}
	l.Matched = len(match)
	filter := url.Values{}
	if l.Q != "" {
		filter.Set("q", l.Q)
	}
	page, p := paginate(match, "/ui/apps", withPage(filter, query.Get("page")))
	l.Pager = p
	return page, l
}
