// Package openstack drives OpenStack Nova for Wharf through gophercloud.
// Importing it registers the provider type "openstack".
//
// The client is built from the account alone: the Keystone v3 endpoint
// (with or without /v3), a password scoped to the account's project in
// its domain, and the account's region, which picks the compute, image
// and network endpoints from the catalog. It never reads clouds.yaml or
// OS_* variables. A token that expires is replaced by authenticating
// again (gophercloud's AllowReauth).
//
// Nova has no client token, so Create is idempotent by name and
// metadata: the server is named wharf-<machine id> and carries the
// wharf-machine metadata; before every attempt (the first and each retry
// after a lost answer) Create looks the machine up and adopts the server
// it finds, so one machine never gets two servers.
//
// Template values are names or ids: a flavor by name or id (Nova's
// flavor list), an image by name (Glance) or id, a network by name
// (Neutron) or id. Resolved ids are cached for the provider's life.
package openstack

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/wharf-platform/wharf/providers"
)

// Type is the provider type this package registers.
const Type = "openstack"

// NamePrefix starts the name of every server Wharf creates: the rest is
// the machine id.
const NamePrefix = "wharf-"

// Nova's limits, checked before a call so that a bad request never
// reaches the cloud.
const (
	maxField    = 255   // a server name, a metadata key or value
	maxMetadata = 128   // metadata items
	maxUserData = 65535 // bytes of base64 user data
)

// Retries: a call that failed with a throttle, a server error or no
// answer is tried again, up to maxAttempts in all, waiting baseWait
// doubled each time (or the cloud's Retry-After) but at most maxWait.
const (
	maxAttempts = 3
	baseWait    = 200 * time.Millisecond
	maxWait     = 5 * time.Second
	httpTimeout = 60 * time.Second // one HTTP exchange, discovery included
)

func init() { providers.Register(Type, Open) }

// Provider is one OpenStack project in one region.
type Provider struct {
	name     string
	authURL  string // Keystone's base, ending in /v3/
	region   string
	auth     gophercloud.AuthOptions
	http     http.Client
	attempts int
	wait     func(attempt int, retryAfter time.Duration) time.Duration
	pageSize int // servers per List page

	authMu sync.Mutex // held while authenticating
	sess   *session   // nil until a call authenticates; under authMu

	mu       sync.Mutex // the caches
	flavors  map[string]flavor
	images   map[string]string // name or id → id
	networks map[string]string // name or id → id
}

// session is one authenticated client with its service endpoints.
type session struct {
	compute *gophercloud.ServiceClient
	image   *gophercloud.ServiceClient // nil when the catalog has none
	network *gophercloud.ServiceClient // nil when the catalog has none
}

type flavor struct {
	id        string
	resources providers.Resources
}

var _ providers.Provider = (*Provider)(nil)

// Open makes a Provider for an account of type openstack. It does not
// call the cloud: the first call authenticates.
func Open(acct providers.Account) (providers.Provider, error) {
	return open(acct)
}

func open(acct providers.Account) (*Provider, error) {
	if acct.Type != "" && acct.Type != Type {
		return nil, fmt.Errorf("openstack: account %q has type %q", acct.Name, acct.Type)
	}
	c := acct.Credentials
	if c.Username == "" || c.Password == "" || c.Project == "" || c.Domain == "" {
		return nil, fmt.Errorf("openstack: account %q needs username, password, project and domain", acct.Name)
	}
	authURL, err := keystoneURL(acct.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("openstack: account %q: %w", acct.Name, err)
	}
	p := &Provider{
		name:    acct.Name,
		authURL: authURL,
		region:  acct.Region,
		auth: gophercloud.AuthOptions{
			IdentityEndpoint: authURL,
			Username:         c.Username,
			Password:         c.Password,
			DomainName:       c.Domain,
			Scope:            &gophercloud.AuthScope{ProjectName: c.Project, DomainName: c.Domain},
			AllowReauth:      true,
		},
		attempts: maxAttempts,
		wait:     backoff,
		pageSize: 1000,
		flavors:  map[string]flavor{},
		images:   map[string]string{},
		networks: map[string]string{},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the account's endpoint, never an ambient proxy
	if acct.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the admin asked for it (a lab endpoint)
	}
	p.http = http.Client{Transport: tr, Timeout: httpTimeout}
	return p, nil
}

// keystoneURL normalizes a Keystone endpoint given with or without /v3
// (and trailing slashes) to its /v3/ form.
func keystoneURL(endpoint string) (string, error) {
	if endpoint == "" {
		return "", errors.New("an endpoint (the Keystone v3 URL) is required")
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("endpoint must be an http or https URL")
	}
	path := strings.TrimRight(u.Path, "/")
	path = strings.TrimSuffix(path, "/v3")
	u.Path = strings.TrimRight(path, "/") + "/v3/"
	u.RawPath = ""
	return u.String(), nil
}

func backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := baseWait << (attempt - 1)
	d = max(d, retryAfter)
	return min(d, maxWait)
}

// session returns the authenticated client, authenticating first when
// there is none (or when fresh is set).
func (p *Provider) session(ctx context.Context, fresh bool) (*session, error) {
	p.authMu.Lock()
	defer p.authMu.Unlock()
	if p.sess != nil && !fresh {
		return p.sess, nil
	}
	pc, err := gopenstack.NewClient(p.authURL)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindBadRequest, Message: "keystone endpoint: " + err.Error()}
	}
	pc.HTTPClient = p.http
	pc.UserAgent.Prepend("wharf")
	if err := gopenstack.AuthenticateV3(ctx, pc, &p.auth, gophercloud.EndpointOpts{}); err != nil {
		return nil, mapError("authenticate with keystone", err)
	}
	eo := gophercloud.EndpointOpts{Region: p.region, Availability: gophercloud.AvailabilityPublic}
	s := &session{}
	if s.compute, err = gopenstack.NewComputeV2(pc, eo); err != nil {
		return nil, catalogError("compute", p.region, err)
	}
	// Glance and Neutron only resolve names; without them, the template
	// gives ids.
	if c, err := gopenstack.NewImageV2(pc, eo); err == nil {
		s.image = c
	} else if !isEndpointNotFound(err) {
		return nil, catalogError("image", p.region, err)
	}
	if c, err := gopenstack.NewNetworkV2(pc, eo); err == nil {
		s.network = c
	} else if !isEndpointNotFound(err) {
		return nil, catalogError("network", p.region, err)
	}
	p.sess = s
	return s, nil
}

func isEndpointNotFound(err error) bool {
	var nf *gophercloud.ErrEndpointNotFound
	var nfv gophercloud.ErrEndpointNotFound
	return errors.As(err, &nf) || errors.As(err, &nfv)
}

// catalogError: no endpoint of a service in the region is an admin's
// problem (a wrong region); anything else is the cloud's answer.
func catalogError(service, region string, err error) error {
	if isEndpointNotFound(err) {
		return &providers.Error{Kind: providers.KindBadRequest, Code: "EndpointNotFound",
			Message: fmt.Sprintf("the catalog has no public %s endpoint in region %q", service, region)}
	}
	return mapError("find the "+service+" endpoint", err)
}

// do runs fn with a session, retrying what may pass by itself: a
// throttle (after the cloud's Retry-After), a server error or no answer.
func (p *Provider) do(ctx context.Context, op string, fn func(*session) error) error {
	for attempt := 1; ; attempt++ {
		s, err := p.session(ctx, false)
		if err == nil {
			if err = fn(s); err == nil {
				return nil
			}
			err = mapError(op, err)
		}
		kind := providers.KindOf(err)
		if attempt >= p.attempts || (kind != providers.KindThrottled && kind != providers.KindUnavailable) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(p.wait(attempt, retryAfter(err)))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Check authenticates afresh (password auth scoped to the project) and
// reads one page of one flavor.
func (p *Provider) Check(ctx context.Context) error {
	s, err := p.session(ctx, true)
	if err != nil {
		return err
	}
	err = flavors.ListDetail(s.compute, flavors.ListOpts{Limit: 1}).EachPage(ctx, func(context.Context, pagination.Page) (bool, error) {
		return false, nil // one page is enough
	})
	if err != nil {
		return mapError("check credentials", err)
	}
	return nil
}

func badRequest(format string, args ...any) error {
	return &providers.Error{Kind: providers.KindBadRequest, Message: fmt.Sprintf(format, args...)}
}

// Create makes the server wharf-<machine id>, or adopts the one an
// earlier attempt made.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.Machine, error) {
	name := NamePrefix + req.MachineID
	switch {
	case req.MachineID == "":
		return providers.Machine{}, badRequest("create: no machine id")
	case len(name) > maxField || !printableASCII(req.MachineID):
		return providers.Machine{}, badRequest("create: machine id %q: a Nova server name takes at most %d printable ASCII characters", req.MachineID, maxField)
	case req.Template.Flavor == "" || req.Template.Image == "":
		return providers.Machine{}, badRequest("create: the template needs flavor and image")
	}
	md, err := metadata(req)
	if err != nil {
		return providers.Machine{}, err
	}
	userData := base64.StdEncoding.EncodeToString(req.UserData)
	if len(userData) > maxUserData {
		return providers.Machine{}, badRequest("create: user data is %d bytes in base64; Nova takes at most %d", len(userData), maxUserData)
	}
	var m providers.Machine
	err = p.do(ctx, "create server "+name, func(s *session) error {
		// No client token: what an earlier attempt made (its answer
		// lost) is found by name and metadata before anything is made.
		found, err := p.find(ctx, s, name, req.MachineID)
		if err != nil || found != nil {
			if found != nil {
				m = machineOf(*found)
			}
			return err
		}
		fl, err := p.flavor(ctx, s, req.Template.Flavor)
		if err != nil {
			return err
		}
		imageID, err := p.image(ctx, s, req.Template.Image)
		if err != nil {
			return err
		}
		opts := servers.CreateOpts{Name: name, FlavorRef: fl.id, ImageRef: imageID, Metadata: md}
		if len(req.UserData) > 0 {
			// Already base64: gophercloud sends base64 as it is.
			opts.UserData = []byte(userData)
		}
		if req.Template.Network != "" {
			netID, err := p.network(ctx, s, req.Template.Network)
			if err != nil {
				return err
			}
			opts.Networks = []servers.Network{{UUID: netID}}
		}
		srv, err := servers.Create(ctx, s.compute, opts, nil).Extract()
		if err != nil {
			return err
		}
		m = providers.Machine{ProviderID: srv.ID, MachineID: req.MachineID, State: providers.StatePending, Tags: maps.Clone(md)}
		return nil
	})
	if err != nil {
		return providers.Machine{}, err
	}
	return m, nil
}

// metadata is the server's metadata: the request's tags with the three
// wharf keys, within Nova's limits.
func metadata(req providers.CreateRequest) (map[string]string, error) {
	md := maps.Clone(req.Tags)
	if md == nil {
		md = map[string]string{}
	}
	for k, v := range map[string]string{providers.TagCluster: req.Cluster, providers.TagPool: req.Pool, providers.TagMachine: req.MachineID} {
		if _, ok := md[k]; !ok && v != "" {
			md[k] = v
		}
	}
	if md[providers.TagMachine] != req.MachineID {
		return nil, badRequest("create: tag %s is %q, not the machine id %q", providers.TagMachine, md[providers.TagMachine], req.MachineID)
	}
	if len(md) > maxMetadata {
		return nil, badRequest("create: %d tags; Nova takes at most %d metadata items", len(md), maxMetadata)
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if k == "" || len(k) > maxField || len(md[k]) > maxField {
			return nil, badRequest("create: tag %q: Nova takes keys of 1 to %d and values of at most %d characters", k, maxField, maxField)
		}
	}
	return md, nil
}

// find looks up the server of a machine: named name and tagged with its
// id; servers being deleted do not count.
func (p *Provider) find(ctx context.Context, s *session, name, machineID string) (*servers.Server, error) {
	pages, err := servers.List(s.compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(name) + "$"}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	list, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, err
	}
	var found *servers.Server
	for i := range list {
		sv := &list[i]
		if sv.Name != name || sv.Metadata[providers.TagMachine] != machineID || stateOf(sv.Status) == providers.StateGone {
			continue
		}
		if found == nil || sv.Created.Before(found.Created) {
			found = sv
		}
	}
	return found, nil
}

// Delete deletes a server; one Nova no longer knows is gone already.
func (p *Provider) Delete(ctx context.Context, providerID string) error {
	if providerID == "" {
		return badRequest("delete: no server id")
	}
	err := p.do(ctx, "delete server "+providerID, func(s *session) error {
		return servers.Delete(ctx, s.compute, providerID).ExtractErr()
	})
	if providers.KindOf(err) == providers.KindNotFound {
		return nil
	}
	return err
}

// Describe reports one server. A server in ERROR is stopped (it exists
// and will not run) and comes with a KindUnavailable error that carries
// Nova's fault message: the machine failed and a new one may not.
func (p *Provider) Describe(ctx context.Context, providerID string) (providers.Machine, error) {
	if providerID == "" {
		return providers.Machine{}, badRequest("describe: no server id")
	}
	var srv *servers.Server
	err := p.do(ctx, "describe server "+providerID, func(s *session) error {
		var err error
		srv, err = servers.Get(ctx, s.compute, providerID).Extract()
		return err
	})
	if err != nil {
		return providers.Machine{}, err
	}
	m := machineOf(*srv)
	if strings.EqualFold(srv.Status, "ERROR") {
		msg := srv.Fault.Message
		if msg == "" {
			msg = "the server is in ERROR"
		}
		return m, &providers.Error{Kind: providers.KindUnavailable, Code: "ERROR", Message: msg}
	}
	return m, nil
}

// List returns the servers tagged wharf-cluster=cluster: Nova filters by
// name (every Wharf server starts with wharf-), the metadata is checked
// here; pages are followed to the end.
func (p *Provider) List(ctx context.Context, cluster string) ([]providers.Machine, error) {
	var out []providers.Machine
	err := p.do(ctx, "list servers of cluster "+cluster, func(s *session) error {
		out = nil
		pager := servers.List(s.compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(NamePrefix), Limit: p.pageSize})
		return pager.EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
			list, err := servers.ExtractServers(page)
			if err != nil {
				return false, err
			}
			for _, sv := range list {
				if sv.Metadata[providers.TagCluster] == cluster {
					out = append(out, machineOf(sv))
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Shape is the flavor's vCPUs and memory, asked once per flavor.
func (p *Provider) Shape(ctx context.Context, t providers.Template) (providers.Resources, bool, error) {
	if t.Flavor == "" {
		return providers.Resources{}, false, nil
	}
	var f flavor
	err := p.do(ctx, "describe flavor "+t.Flavor, func(s *session) error {
		var err error
		f, err = p.flavor(ctx, s, t.Flavor)
		return err
	})
	if err != nil {
		return providers.Resources{}, false, err
	}
	return f.resources, true, nil
}

// flavor resolves a flavor by id (GET /flavors/{id}) or name (the
// flavor list: Nova does not filter flavors by name).
func (p *Provider) flavor(ctx context.Context, s *session, ref string) (flavor, error) {
	p.mu.Lock()
	f, ok := p.flavors[ref]
	p.mu.Unlock()
	if ok {
		return f, nil
	}
	keep := func(fl flavors.Flavor) flavor {
		f := flavor{id: fl.ID, resources: providers.Resources{CPUMillis: int64(fl.VCPUs) * 1000, MemoryBytes: int64(fl.RAM) << 20}}
		p.mu.Lock()
		p.flavors[ref] = f
		p.mu.Unlock()
		return f
	}
	pages, err := flavors.ListDetail(s.compute, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return flavor{}, err
	}
	list, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return flavor{}, err
	}
	for _, fl := range list {
		if fl.ID == ref {
			return keep(fl), nil
		}
	}
	var named []flavors.Flavor
	for _, fl := range list {
		if fl.Name == ref {
			named = append(named, fl)
		}
	}
	switch len(named) {
	case 1:
		return keep(named[0]), nil
	case 0:
		// A private flavor is not listed but may be read by id.
		fl, err := flavors.Get(ctx, s.compute, ref).Extract()
		if err == nil {
			return keep(*fl), nil
		}
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return flavor{}, &providers.Error{Kind: providers.KindBadRequest, Code: "FlavorNotFound", Message: "no flavor named or with id " + ref}
		}
		return flavor{}, err
	}
	return flavor{}, &providers.Error{Kind: providers.KindBadRequest, Code: "FlavorAmbiguous", Message: fmt.Sprintf("%d flavors are named %s: give the id", len(named), ref)}
}

// image resolves an image by name (Glance) or id.
func (p *Provider) image(ctx context.Context, s *session, ref string) (string, error) {
	return p.resolve(ctx, "image", ref, p.images, s.image,
		func(ctx context.Context, c *gophercloud.ServiceClient) ([]string, error) {
			pages, err := images.List(c, images.ListOpts{Name: ref}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			list, err := images.ExtractImages(pages)
			var ids []string
			for _, im := range list {
				if im.Name == ref {
					ids = append(ids, im.ID)
				}
			}
			return ids, err
		},
		func(ctx context.Context, c *gophercloud.ServiceClient) error {
			return images.Get(ctx, c, ref).Err
		})
}

// network resolves a network by name (Neutron) or id.
func (p *Provider) network(ctx context.Context, s *session, ref string) (string, error) {
	return p.resolve(ctx, "network", ref, p.networks, s.network,
		func(ctx context.Context, c *gophercloud.ServiceClient) ([]string, error) {
			pages, err := networks.List(c, networks.ListOpts{Name: ref}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			list, err := networks.ExtractNetworks(pages)
			var ids []string
			for _, n := range list {
				if n.Name == ref {
					ids = append(ids, n.ID)
				}
			}
			return ids, err
		},
		func(ctx context.Context, c *gophercloud.ServiceClient) error {
			return networks.Get(ctx, c, ref).Err
		})
}

// resolve turns a name or id into an id through a service's list by
// name, then its get by id; without the service, ref is taken as an id.
func (p *Provider) resolve(ctx context.Context, what, ref string, cache map[string]string, c *gophercloud.ServiceClient,
	byName func(context.Context, *gophercloud.ServiceClient) ([]string, error),
	byID func(context.Context, *gophercloud.ServiceClient) error) (string, error) {
	p.mu.Lock()
	id, ok := cache[ref]
	p.mu.Unlock()
	if ok {
		return id, nil
	}
	if c == nil {
		return ref, nil
	}
	ids, err := byName(ctx, c)
	if err != nil {
		return "", err
	}
	switch {
	case len(ids) > 1:
		return "", &providers.Error{Kind: providers.KindBadRequest, Code: strings.ToUpper(what[:1]) + what[1:] + "Ambiguous",
			Message: fmt.Sprintf("%d %ss are named %s: give the id", len(ids), what, ref)}
	case len(ids) == 1:
		id = ids[0]
	default:
		if err := byID(ctx, c); err != nil {
			if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				return "", &providers.Error{Kind: providers.KindBadRequest, Code: strings.ToUpper(what[:1]) + what[1:] + "NotFound",
					Message: fmt.Sprintf("no %s named or with id %s", what, ref)}
			}
			return "", err
		}
		id = ref
	}
	p.mu.Lock()
	cache[ref] = id
	p.mu.Unlock()
	return id, nil
}

// machineOf maps a Nova server.
func machineOf(sv servers.Server) providers.Machine {
	m := providers.Machine{ProviderID: sv.ID, Tags: maps.Clone(sv.Metadata), State: stateOf(sv.Status)}
	if m.Tags == nil {
		m.Tags = map[string]string{}
	}
	m.MachineID = m.Tags[providers.TagMachine]
	for _, net := range slices.Sorted(maps.Keys(sv.Addresses)) {
		list, _ := sv.Addresses[net].([]any)
		for _, a := range list {
			if am, ok := a.(map[string]any); ok {
				if addr, ok := am["addr"].(string); ok && addr != "" {
					m.Addresses = append(m.Addresses, addr)
				}
			}
		}
	}
	return m
}

// stateOf maps Nova's server status.
func stateOf(status string) providers.State {
	switch strings.ToUpper(status) {
	case "BUILD", "REBUILD", "REBOOT", "HARD_REBOOT", "MIGRATING", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE", "PASSWORD", "UNKNOWN":
		return providers.StatePending
	case "ACTIVE":
		return providers.StateRunning
	case "SHUTOFF", "STOPPED", "PAUSED", "SUSPENDED", "SHELVED", "SHELVED_OFFLOADED", "RESCUE", "ERROR":
		return providers.StateStopped
	case "DELETED", "SOFT_DELETED":
		return providers.StateGone
	}
	return providers.StatePending // a status Nova adds later: not gone, not usable yet
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
