package cloudsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Nova's limits the simulator enforces.
const (
	novaMaxLimit    = 1000  // osapi_max_limit: the largest page
	novaMaxUserData = 65535 // bytes of base64 user_data
	novaMaxMetadata = 128   // metadata_items quota
	novaMaxField    = 255   // a name, a metadata key or value
	novaTimeForm    = "2006-01-02T15:04:05Z"
)

// novaError is an error answer: Nova's {"<kind>": {"code", "message"}}
// or, for Keystone, {"error": {"code", "message", "title"}}.
type novaError struct {
	Status     int
	Message    string
	RetryAfter int  // seconds; 0 sends no Retry-After
	keystone   bool // Keystone's format (authentication and the token check)
}

func (e *novaError) Error() string { return strconv.Itoa(e.Status) + ": " + e.Message }

// novaErrorKeys are the keys Nova wraps an error in, per status.
var novaErrorKeys = map[int]string{
	http.StatusBadRequest:            "badRequest",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "itemNotFound",
	http.StatusMethodNotAllowed:      "HTTPMethodNotAllowed",
	http.StatusConflict:              "conflictingRequest",
	http.StatusRequestEntityTooLarge: "overLimit",
	http.StatusTooManyRequests:       "overLimit",
	http.StatusInternalServerError:   "computeFault",
	http.StatusNotImplemented:        "notImplemented",
	http.StatusServiceUnavailable:    "serviceUnavailable",
}

func novaDefaultMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "The request you have made requires authentication."
	case http.StatusForbidden:
		return "Policy doesn't allow this operation to be performed."
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return "This request was rate-limited."
	case http.StatusServiceUnavailable:
		return "The server is currently unavailable. Please try again at a later time."
	case http.StatusInternalServerError:
		return "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible."
	}
	return "Injected fault " + strconv.Itoa(status) + "."
}

func (e *novaError) body() any {
	if e.keystone {
		return map[string]any{"error": map[string]any{"code": e.Status, "message": e.Message, "title": http.StatusText(e.Status)}}
	}
	key, ok := novaErrorKeys[e.Status]
	if !ok {
		key = "computeFault"
		if e.Status < 500 {
			key = "badRequest"
		}
	}
	return map[string]any{key: map[string]any{"code": e.Status, "message": e.Message}}
}

// novaRequest is one decoded call.
type novaRequest struct {
	method string
	id     string // the {id} of the path, "" for collections
	query  url.Values
	body   []byte
	header http.Header // the answer's headers
	user   OpenStackUser
}

type novaHandler func(s *OpenStack, r *novaRequest, now time.Time) (int, any, *novaError)

// novaRoute is a call the simulator answers.
type novaRoute struct {
	call     string // "" for documents that need no token
	keystone bool   // errors in Keystone's format
	handle   novaHandler
}

// route finds the call for a method and path; the {id} element is
// returned apart.
func novaRouteOf(method, path string) (novaRoute, string, *novaError) {
	path = strings.TrimSuffix(path, "/")
	type key struct{ method, path string }
	static := map[key]novaRoute{
		{"GET", ""}: {handle: func(s *OpenStack, _ *novaRequest, _ time.Time) (int, any, *novaError) {
			return 300, s.keystoneVersions(), nil
		}},
		{"GET", "/v3"}: {handle: func(s *OpenStack, _ *novaRequest, _ time.Time) (int, any, *novaError) {
			return 200, s.keystoneVersion(), nil
		}},
		{"POST", "/v3/auth/tokens"}:             {call: "Authenticate", keystone: true, handle: (*OpenStack).authenticate},
		{"GET", "/compute/v2.1"}:                {handle: novaVersion},
		{"POST", "/compute/v2.1/servers"}:       {call: "CreateServer", handle: (*OpenStack).createServer},
		{"GET", "/compute/v2.1/servers"}:        {call: "ListServers", handle: (*OpenStack).listServers},
		{"GET", "/compute/v2.1/servers/detail"}: {call: "ListServers", handle: (*OpenStack).listServers},
		{"GET", "/compute/v2.1/flavors"}:        {call: "ListFlavors", handle: (*OpenStack).listFlavors},
		{"GET", "/compute/v2.1/flavors/detail"}: {call: "ListFlavors", handle: (*OpenStack).listFlavors},
		{"GET", "/image"}:                       {handle: novaVersionsDoc("v2.16")},
		{"GET", "/image/v2/images"}:             {call: "ListImages", handle: (*OpenStack).listImages},
		{"GET", "/network"}:                     {handle: novaVersionsDoc("v2.0")},
		{"GET", "/network/v2.0/networks"}:       {call: "ListNetworks", handle: (*OpenStack).listNetworks},
	}
	if rt, ok := static[key{method, path}]; ok {
		return rt, "", nil
	}
	for _, p := range []struct {
		prefix, method string
		rt             novaRoute
	}{
		{"/compute/v2.1/servers/", "GET", novaRoute{call: "GetServer", handle: (*OpenStack).getServer}},
		{"/compute/v2.1/servers/", "DELETE", novaRoute{call: "DeleteServer", handle: (*OpenStack).deleteServer}},
		{"/compute/v2.1/flavors/", "GET", novaRoute{call: "GetFlavor", handle: (*OpenStack).getFlavor}},
		{"/image/v2/images/", "GET", novaRoute{call: "GetImage", handle: (*OpenStack).getImage}},
		{"/network/v2.0/networks/", "GET", novaRoute{call: "GetNetwork", handle: (*OpenStack).getNetwork}},
	} {
		id, ok := strings.CutPrefix(path, p.prefix)
		if !ok || id == "" || strings.Contains(id, "/") {
			continue
		}
		if method != p.method {
			continue
		}
		return p.rt, id, nil
	}
	for k := range static {
		if k.path == path {
			return novaRoute{}, "", &novaError{Status: http.StatusMethodNotAllowed, Message: "The method " + method + " is not allowed for this resource."}
		}
	}
	return novaRoute{}, "", &novaError{Status: http.StatusNotFound, Message: "The resource could not be found."}
}

// serveHTTP is the whole request path: body, route, token, latency,
// faults, the call, and the answer (or a lost one).
func (s *OpenStack) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > maxBody {
		writeNova(w, nil, 0, nil, &novaError{Status: http.StatusRequestEntityTooLarge, Message: "Request is too large."})
		return
	}
	req := &novaRequest{method: r.Method, query: r.URL.Query(), body: body, header: http.Header{}}
	rt, id, nerr := novaRouteOf(r.Method, r.URL.Path)
	if nerr != nil {
		writeNova(w, nil, 0, nil, nerr)
		return
	}
	req.id = id
	now := time.Now()
	if rt.call == "" {
		status, resp, nerr := rt.handle(s, req, now)
		writeNova(w, req.header, status, resp, nerr)
		return
	}
	if !rt.keystone {
		user, nerr := s.checkToken(r, now)
		if nerr != nil {
			s.log.Debug("openstack call refused", "call", rt.call, "status", nerr.Status)
			writeNova(w, nil, 0, nil, nerr)
			return
		}
		req.user = user
	}
	s.mu.Lock()
	s.calls[rt.call]++
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.stop:
			t.Stop()
			return
		}
	}
	status, resp, nerr := s.call(rt, req, now)
	if nerr != nil {
		s.log.Debug("openstack call refused", "call", rt.call, "status", nerr.Status)
		nerr.keystone = nerr.keystone || rt.keystone
		writeNova(w, req.header, 0, nil, nerr)
		return
	}
	s.log.Debug("openstack call", "call", rt.call, "status", status)
	if s.takeLost(rt.call) {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	writeNova(w, req.header, status, resp, nil)
}

// call checks the faults, then runs the call under the lock (Keystone's
// takes it itself).
func (s *OpenStack) call(rt novaRoute, req *novaRequest, now time.Time) (int, any, *novaError) {
	s.mu.Lock()
	if nerr := s.faultLocked(rt.call); nerr != nil {
		s.mu.Unlock()
		return 0, nil, nerr
	}
	if rt.keystone {
		s.mu.Unlock()
		return rt.handle(s, req, now)
	}
	defer s.mu.Unlock()
	return rt.handle(s, req, now)
}

func writeNova(w http.ResponseWriter, header http.Header, status int, resp any, nerr *novaError) {
	for k, v := range header {
		w.Header()[k] = v
	}
	if nerr != nil {
		status, resp = nerr.Status, nerr.body()
		if nerr.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(nerr.RetryAfter))
		}
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"computeFault": {"code": 500, "message": "cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// keystoneVersions is GET /: the versions Keystone offers.
func (s *OpenStack) keystoneVersions() any {
	return map[string]any{"versions": map[string]any{"values": []any{map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links": []map[string]string{{"rel": "self", "href": s.srv.URL + "/v3/"}},
	}}}}
}

func novaVersion(s *OpenStack, _ *novaRequest, _ time.Time) (int, any, *novaError) {
	return 200, map[string]any{"version": map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": "2.96", "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
		"links": []map[string]string{{"rel": "self", "href": s.srv.URL + "/compute/v2.1/"}},
	}}, nil
}

func novaVersionsDoc(id string) novaHandler {
	return func(s *OpenStack, _ *novaRequest, _ time.Time) (int, any, *novaError) {
		return 200, map[string]any{"versions": []map[string]any{{"id": id, "status": "CURRENT"}}}, nil
	}
}

// novaCreate is the body of POST /servers.
type novaCreate struct {
	Server *struct {
		Name      string            `json:"name"`
		FlavorRef string            `json:"flavorRef"`
		ImageRef  string            `json:"imageRef"`
		Networks  json.RawMessage   `json:"networks"`
		Metadata  map[string]string `json:"metadata"`
		UserData  *string           `json:"user_data"`
		MinCount  int               `json:"min_count"`
		MaxCount  int               `json:"max_count"`
	} `json:"server"`
}

func novaBadRequest(format string, args ...any) *novaError {
	return &novaError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// createServer is POST /servers.
func (s *OpenStack) createServer(r *novaRequest, now time.Time) (int, any, *novaError) {
	var in novaCreate
	if err := json.Unmarshal(r.body, &in); err != nil || in.Server == nil {
		return 0, nil, novaBadRequest("Invalid input for field/attribute server. Value: the body is not a server.")
	}
	c := in.Server
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > novaMaxField {
		return 0, nil, novaBadRequest("Invalid input for field/attribute name. Value: %s.", truncate(c.Name, 64))
	}
	flavor, ok := s.flavorLocked(novaLastElem(c.FlavorRef))
	if !ok {
		return 0, nil, novaBadRequest("Flavor %s could not be found.", truncate(c.FlavorRef, 64))
	}
	image, ok := novaFind(s.images, novaLastElem(c.ImageRef))
	if !ok {
		return 0, nil, novaBadRequest("Image %s could not be found.", truncate(c.ImageRef, 64))
	}
	nets, nerr := s.serverNetworks(c.Networks)
	if nerr != nil {
		return 0, nil, nerr
	}
	if len(c.Metadata) > novaMaxMetadata {
		return 0, nil, &novaError{Status: http.StatusForbidden, Message: "Quota exceeded for metadata_items: Requested " + strconv.Itoa(len(c.Metadata)) + ", but already used 0 of 128 metadata_items"}
	}
	for k, v := range c.Metadata {
		if k == "" || len(k) > novaMaxField || len(v) > novaMaxField {
			return 0, nil, novaBadRequest("Invalid input for field/attribute metadata. Value: key %s.", truncate(k, 64))
		}
	}
	var userData []byte
	if c.UserData != nil {
		if len(*c.UserData) > novaMaxUserData {
			return 0, nil, novaBadRequest("Invalid input for field/attribute user_data. Value: too long (%d bytes, at most %d).", len(*c.UserData), novaMaxUserData)
		}
		b, err := base64.StdEncoding.DecodeString(*c.UserData)
		if err != nil {
			return 0, nil, novaBadRequest("User data needs to be valid base 64.")
		}
		userData = b
	}
	if c.MinCount > 1 || c.MaxCount > 1 {
		return 0, nil, novaBadRequest("This simulator creates one server per request (min_count and max_count at most 1).")
	}
	if s.maxServers > 0 && s.liveLocked() >= s.maxServers {
		used := s.liveLocked()
		return 0, nil, &novaError{Status: http.StatusForbidden, Message: fmt.Sprintf("Quota exceeded for instances: Requested 1, but already used %d of %d instances", used, s.maxServers)}
	}
	s.ipSeq++
	sv := &novaServer{NovaServer: NovaServer{
		ID: novaUUID(), Name: c.Name, FlavorID: flavor.ID, ImageID: image.ID, Networks: nets,
		Metadata: c.Metadata, UserData: userData, Status: NovaBuild, ProjectID: r.user.Project, Created: now.UTC(),
		IP: fmt.Sprintf("10.0.%d.%d", s.ipSeq/250, s.ipSeq%250+2),
	}}
	if sv.Metadata == nil {
		sv.Metadata = map[string]string{}
	}
	s.launchLocked(sv)
	return http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": sv.ID, "links": s.links("servers", sv.ID), "adminPass": randomHex(6),
		"OS-DCF:diskConfig": "MANUAL", "security_groups": []map[string]string{{"name": "default"}},
	}}, nil
}

// serverNetworks decodes networks: a list of {"uuid"} (or {"port"},
// which the simulator does not have), "auto" or "none"; absent is the
// only network when there is one, as Nova's auto-allocation.
func (s *OpenStack) serverNetworks(raw json.RawMessage) ([]string, *novaError) {
	if len(raw) == 0 || string(raw) == "null" {
		if len(s.networks) == 1 {
			return []string{s.networks[0].ID}, nil
		}
		return nil, novaBadRequest("Multiple possible networks found, use a Network ID to be more specific.")
	}
	var word string
	if json.Unmarshal(raw, &word) == nil {
		switch word {
		case "none":
			return nil, nil
		case "auto":
			if len(s.networks) == 0 {
				return nil, novaBadRequest("Unable to automatically allocate a network for project.")
			}
			return []string{s.networks[0].ID}, nil
		}
		return nil, novaBadRequest("Invalid input for field/attribute networks. Value: %s.", truncate(word, 64))
	}
	var list []struct {
		UUID string `json:"uuid"`
		Port string `json:"port"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, novaBadRequest("Invalid input for field/attribute networks.")
	}
	var out []string
	for _, n := range list {
		if n.Port != "" {
			return nil, novaBadRequest("Port %s could not be found.", truncate(n.Port, 64))
		}
		if _, ok := novaFind(s.networks, n.UUID); !ok {
			return nil, novaBadRequest("Network %s could not be found.", truncate(n.UUID, 64))
		}
		out = append(out, n.UUID)
	}
	return out, nil
}

// getServer is GET /servers/{id}.
func (s *OpenStack) getServer(r *novaRequest, _ time.Time) (int, any, *novaError) {
	sv, ok := s.servers[r.id]
	if !ok {
		return 0, nil, &novaError{Status: http.StatusNotFound, Message: "Instance " + truncate(r.id, 64) + " could not be found."}
	}
	return http.StatusOK, map[string]any{"server": s.serverView(sv)}, nil
}

// deleteServer is DELETE /servers/{id}: DELETED now, gone after the
// delete delay; a server already deleted is not found.
func (s *OpenStack) deleteServer(r *novaRequest, _ time.Time) (int, any, *novaError) {
	sv, ok := s.servers[r.id]
	if !ok || sv.Status == NovaDeleted {
		return 0, nil, &novaError{Status: http.StatusNotFound, Message: "Instance " + truncate(r.id, 64) + " could not be found."}
	}
	sv.Status = NovaDeleted
	sv.cancel()
	return http.StatusNoContent, nil, nil
}

// listServers is GET /servers[/detail]: filters name (a regular
// expression, as Nova's) and status, paged by limit and marker.
func (s *OpenStack) listServers(r *novaRequest, _ time.Time) (int, any, *novaError) {
	var nameRE *regexp.Regexp
	if n := r.query.Get("name"); n != "" {
		if len(n) > novaMaxField {
			return 0, nil, novaBadRequest("Invalid input for query parameters name. Value: %s.", truncate(n, 64))
		}
		re, err := regexp.Compile(n)
		if err != nil {
			return 0, nil, novaBadRequest("Invalid input for query parameters name. Value: %s.", truncate(n, 64))
		}
		nameRE = re
	}
	status := strings.ToUpper(r.query.Get("status"))
	var ids []string
	for _, sv := range s.order {
		if nameRE != nil && !nameRE.MatchString(sv.Name) || status != "" && sv.Status != status {
			continue
		}
		ids = append(ids, sv.ID)
	}
	page, next, nerr := s.page(ids, r.query, "servers/detail")
	if nerr != nil {
		return 0, nil, nerr
	}
	out := []any{}
	for _, id := range page {
		out = append(out, s.serverView(s.servers[id]))
	}
	resp := map[string]any{"servers": out}
	if next != "" {
		resp["servers_links"] = []map[string]string{{"rel": "next", "href": next}}
	}
	return http.StatusOK, resp, nil
}

// page cuts one page out of ids by limit and marker; next is the link
// to the following page when this one is full, as Nova writes it.
func (s *OpenStack) page(ids []string, q url.Values, path string) ([]string, string, *novaError) {
	limit := novaMaxLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, "", novaBadRequest("Invalid input for query parameters limit. Value: %s.", truncate(v, 32))
		}
		limit = min(n, novaMaxLimit)
	}
	start := 0
	if m := q.Get("marker"); m != "" {
		i := novaIndex(ids, m)
		if i < 0 {
			return nil, "", novaBadRequest("marker [%s] not found", truncate(m, 64))
		}
		start = i + 1
	}
	end := min(start+limit, len(ids))
	page := ids[start:end]
	next := ""
	if limit > 0 && len(page) == limit {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("limit", strconv.Itoa(limit))
		nq.Set("marker", page[len(page)-1])
		next = s.srv.URL + "/compute/v2.1/" + path + "?" + nq.Encode()
	}
	return page, next, nil
}

func novaIndex(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// serverView is a server as GET /servers/{id} shows it.
func (s *OpenStack) serverView(sv *novaServer) map[string]any {
	vm, task, power := map[string]string{NovaBuild: "building", NovaActive: "active", NovaError: "error", NovaDeleted: "deleted"}[sv.Status], any(nil), 0
	switch sv.Status {
	case NovaBuild:
		task = "spawning"
	case NovaActive:
		power = 1
	case NovaDeleted:
		task = "deleting"
	}
	v := map[string]any{
		"id": sv.ID, "name": sv.Name, "status": sv.Status, "tenant_id": sv.ProjectID, "user_id": "wharf-user",
		"metadata": sv.Metadata, "hostId": "", "created": sv.Created.Format(novaTimeForm), "updated": sv.Created.Format(novaTimeForm),
		"image":    map[string]any{"id": sv.ImageID, "links": s.links("images", sv.ImageID)},
		"key_name": nil, "accessIPv4": "", "accessIPv6": "", "progress": 0,
		"links":               s.links("servers", sv.ID),
		"OS-EXT-STS:vm_state": vm, "OS-EXT-STS:task_state": task, "OS-EXT-STS:power_state": power,
		"OS-DCF:diskConfig": "MANUAL", "config_drive": "", "security_groups": []map[string]string{{"name": "default"}},
	}
	if f, ok := s.flavorLocked(sv.FlavorID); ok {
		v["flavor"] = map[string]any{"id": f.ID, "original_name": f.Name, "vcpus": f.VCPUs, "ram": f.RAMMiB, "disk": f.DiskGB, "ephemeral": 0, "swap": 0}
	}
	addrs := map[string]any{}
	if sv.Status != NovaBuild && sv.Status != NovaError {
		for _, id := range sv.Networks {
			if n, ok := novaFind(s.networks, id); ok {
				addrs[n.Name] = []map[string]any{{"version": 4, "addr": sv.IP, "OS-EXT-IPS:type": "fixed"}}
			}
		}
	}
	v["addresses"] = addrs
	if sv.Status == NovaError {
		v["fault"] = map[string]any{"code": 500, "created": sv.Created.Format(novaTimeForm), "message": sv.Fault, "details": ""}
	}
	return v
}

func (s *OpenStack) links(kind, id string) []map[string]string {
	return []map[string]string{{"rel": "self", "href": s.srv.URL + "/compute/v2.1/" + kind + "/" + id}}
}

func (s *OpenStack) flavorLocked(id string) (NovaFlavor, bool) {
	for _, f := range s.flavors {
		if f.ID == id {
			return f, true
		}
	}
	return NovaFlavor{}, false
}

func novaFind(list []OpenStackResource, id string) (OpenStackResource, bool) {
	for _, r := range list {
		if r.ID == id {
			return r, true
		}
	}
	return OpenStackResource{}, false
}

// lastElem takes a reference that may be a URL (.../flavors/ID) to its id.
func novaLastElem(ref string) string {
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

func novaFlavorView(f NovaFlavor) map[string]any {
	return map[string]any{
		"id": f.ID, "name": f.Name, "vcpus": f.VCPUs, "ram": f.RAMMiB, "disk": f.DiskGB, "swap": "",
		"OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": true, "rxtx_factor": 1.0,
	}
}

// listFlavors is GET /flavors[/detail], paged by limit and marker.
func (s *OpenStack) listFlavors(r *novaRequest, _ time.Time) (int, any, *novaError) {
	var ids []string
	for _, f := range s.flavors {
		ids = append(ids, f.ID)
	}
	page, next, nerr := s.page(ids, r.query, "flavors/detail")
	if nerr != nil {
		return 0, nil, nerr
	}
	out := []any{}
	for _, id := range page {
		f, _ := s.flavorLocked(id)
		out = append(out, novaFlavorView(f))
	}
	resp := map[string]any{"flavors": out}
	if next != "" {
		resp["flavors_links"] = []map[string]string{{"rel": "next", "href": next}}
	}
	return http.StatusOK, resp, nil
}

// getFlavor is GET /flavors/{id}.
func (s *OpenStack) getFlavor(r *novaRequest, _ time.Time) (int, any, *novaError) {
	f, ok := s.flavorLocked(r.id)
	if !ok {
		return 0, nil, &novaError{Status: http.StatusNotFound, Message: "Flavor " + truncate(r.id, 64) + " could not be found."}
	}
	return http.StatusOK, map[string]any{"flavor": novaFlavorView(f)}, nil
}

func glanceImageView(im OpenStackResource) map[string]any {
	return map[string]any{
		"id": im.ID, "name": im.Name, "status": "active", "visibility": "public", "container_format": "bare",
		"disk_format": "qcow2", "min_disk": 0, "min_ram": 0, "protected": false, "size": 1 << 28, "tags": []string{},
		"self": "/v2/images/" + im.ID, "file": "/v2/images/" + im.ID + "/file", "schema": "/v2/schemas/image",
	}
}

// listImages is Glance's GET /v2/images[?name=].
func (s *OpenStack) listImages(r *novaRequest, _ time.Time) (int, any, *novaError) {
	out := []any{}
	for _, im := range s.images {
		if n := r.query.Get("name"); n == "" || n == im.Name {
			out = append(out, glanceImageView(im))
		}
	}
	return http.StatusOK, map[string]any{"images": out, "first": "/v2/images", "schema": "/v2/schemas/images"}, nil
}

// getImage is Glance's GET /v2/images/{id}: the image, not enveloped.
func (s *OpenStack) getImage(r *novaRequest, _ time.Time) (int, any, *novaError) {
	im, ok := novaFind(s.images, r.id)
	if !ok {
		return 0, nil, &novaError{Status: http.StatusNotFound, Message: "No image found with ID " + truncate(r.id, 64)}
	}
	return http.StatusOK, glanceImageView(im), nil
}

func neutronNetworkView(n OpenStackResource, project string) map[string]any {
	return map[string]any{
		"id": n.ID, "name": n.Name, "status": "ACTIVE", "admin_state_up": true, "subnets": []string{},
		"tenant_id": project, "project_id": project, "shared": false, "tags": []string{},
	}
}

// listNetworks is Neutron's GET /v2.0/networks[?name=].
func (s *OpenStack) listNetworks(r *novaRequest, _ time.Time) (int, any, *novaError) {
	out := []any{}
	for _, n := range s.networks {
		if name := r.query.Get("name"); name == "" || name == n.Name {
			out = append(out, neutronNetworkView(n, r.user.Project))
		}
	}
	return http.StatusOK, map[string]any{"networks": out}, nil
}

// getNetwork is Neutron's GET /v2.0/networks/{id}.
func (s *OpenStack) getNetwork(r *novaRequest, _ time.Time) (int, any, *novaError) {
	n, ok := novaFind(s.networks, r.id)
	if !ok {
		return 0, nil, &novaError{Status: http.StatusNotFound, Message: "Network " + truncate(r.id, 64) + " could not be found."}
	}
	return http.StatusOK, map[string]any{"network": neutronNetworkView(n, r.user.Project)}, nil
}
