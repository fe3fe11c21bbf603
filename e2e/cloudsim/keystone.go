package cloudsim

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// keystoneTimeForm is how Keystone writes expires_at and issued_at.
const keystoneTimeForm = "2006-01-02T15:04:05.000000Z"

// keystoneName is a reference by id or by name, as Keystone takes users,
// projects and domains.
type keystoneName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// keystoneAuth is the body of POST /v3/auth/tokens (the parts the
// password method with a project scope uses).
type keystoneAuth struct {
	Auth *struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User struct {
					keystoneName
					Password string        `json:"password"`
					Domain   *keystoneName `json:"domain"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope *struct {
			Project *struct {
				keystoneName
				Domain *keystoneName `json:"domain"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

// matches tells whether a reference names what is called name (Keystone
// ids in this simulator are the names themselves).
func (n *keystoneName) matches(name string) bool {
	if n == nil {
		return false
	}
	return n.ID == name || n.Name == name
}

// authenticate is POST /v3/auth/tokens: the password method, scoped to a
// project. Wrong names or password are 401, as Keystone answers them,
// without saying which was wrong.
func (s *OpenStack) authenticate(r *novaRequest, now time.Time) (int, any, *novaError) {
	var in keystoneAuth
	if err := json.Unmarshal(r.body, &in); err != nil || in.Auth == nil {
		return 0, nil, &novaError{Status: http.StatusBadRequest, Message: "Expecting to find auth in request body. The server could not comply with the request since it is either malformed or otherwise incorrect."}
	}
	id := in.Auth.Identity
	if !keystoneHasMethod(id.Methods, "password") || id.Password == nil {
		return 0, nil, &novaError{Status: http.StatusUnauthorized, Message: "The request you have made requires authentication."}
	}
	u := id.Password.User
	var user *OpenStackUser
	for i := range s.users {
		c := &s.users[i]
		if !u.matches(c.Name) {
			continue
		}
		if u.ID != c.Name && !u.Domain.matches(c.Domain) {
			continue // a user by name needs its domain
		}
		if subtle.ConstantTimeCompare([]byte(u.Password), []byte(c.Password)) == 1 {
			user = c
		}
		break
	}
	if user == nil {
		return 0, nil, &novaError{Status: http.StatusUnauthorized, Message: "The request you have made requires authentication."}
	}
	project := ""
	if sc := in.Auth.Scope; sc != nil && sc.Project != nil {
		p := sc.Project
		if !p.matches(user.Project) || p.ID != user.Project && !p.Domain.matches(user.Domain) {
			return 0, nil, &novaError{Status: http.StatusUnauthorized, Message: "The request you have made requires authentication."}
		}
		project = user.Project
	}
	token := "gAAAAA" + randomHex(32)
	expires := now.Add(s.tokenTTL)
	s.mu.Lock()
	s.tokens[token] = novaToken{user: *user, project: project, expires: expires}
	s.mu.Unlock()
	domain := map[string]string{"id": user.Domain, "name": user.Domain}
	body := map[string]any{
		"methods":    []string{"password"},
		"expires_at": expires.UTC().Format(keystoneTimeForm),
		"issued_at":  now.UTC().Format(keystoneTimeForm),
		"user":       map[string]any{"id": user.Name, "name": user.Name, "domain": domain, "password_expires_at": nil},
		"audit_ids":  []string{randomHex(8)},
	}
	if project != "" {
		body["project"] = map[string]any{"id": project, "name": project, "domain": domain}
		body["roles"] = []map[string]string{{"id": "member", "name": "member"}}
		body["catalog"] = s.catalog()
	}
	r.header.Set("X-Subject-Token", token)
	return http.StatusCreated, map[string]any{"token": body}, nil
}

// catalog points every service at this server, in the simulator's
// region, on the public and internal interfaces.
func (s *OpenStack) catalog() []map[string]any {
	base := s.srv.URL
	var out []map[string]any
	for _, svc := range []struct{ typ, name, path string }{
		{"identity", "keystone", "/v3"},
		{"compute", "nova", "/compute/v2.1"},
		{"image", "glance", "/image"},
		{"network", "neutron", "/network"},
	} {
		var eps []map[string]string
		for _, iface := range []string{"public", "internal"} {
			eps = append(eps, map[string]string{
				"id": svc.name + "-" + iface, "interface": iface, "region": s.region, "region_id": s.region, "url": base + svc.path,
			})
		}
		out = append(out, map[string]any{"id": svc.name, "type": svc.typ, "name": svc.name, "endpoints": eps})
	}
	return out
}

// checkToken is what Nova's keystone middleware does with X-Auth-Token:
// an unknown, expired or unscoped token is 401.
func (s *OpenStack) checkToken(r *http.Request, now time.Time) (OpenStackUser, *novaError) {
	token := r.Header.Get("X-Auth-Token")
	s.mu.Lock()
	t, ok := s.tokens[token]
	s.mu.Unlock()
	if token == "" || !ok || !now.Before(t.expires) || t.project == "" {
		return OpenStackUser{}, &novaError{Status: http.StatusUnauthorized, Message: "The request you have made requires authentication.", keystone: true}
	}
	return t.user, nil
}

// keystoneVersion is GET /v3: the version document.
func (s *OpenStack) keystoneVersion() any {
	return map[string]any{"version": map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]string{{"rel": "self", "href": s.srv.URL + "/v3/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}}
}

func keystoneHasMethod(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
