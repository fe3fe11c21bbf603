// Package aliyun drives Alibaba Cloud ECS for Wharf through the Alibaba
// Cloud SDK for Go (services/ecs). Importing it registers the provider
// type "aliyun".
//
// The client is built from the account alone: a static AccessKey, the
// account's region and, when set, its endpoint (a simulator or a private
// endpoint: its scheme and host:port go to every request). It never reads
// credential files or the environment (not even proxy variables), never
// asks the instance metadata service and never resolves endpoints through
// the Location service: without an endpoint, calls go to
// ecs.REGION.aliyuncs.com and vpc.REGION.aliyuncs.com over HTTPS. One
// switch of the SDK's own stays: DEBUG=sdk in the process's environment at
// start makes it print every request to stdout (the AccessKey id and the
// user data with its join token, never the secret), so a hub never runs
// with it.
//
// The SDK takes no context and its client is not safe for concurrent
// calls (it rewrites its timeout and transport on every call), so every
// call gets a client of its own over one shared connection pool, and the
// call's context reaches the HTTP requests through that client's
// transport. The SDK retries a call at once after a transport error or a
// 5xx answer, with a new nonce and signature (the hub's provisioner backs
// off between its own attempts).
//
// Create is idempotent through RunInstances' ClientToken, which is the
// machine id: a create retried after a lost answer or a hub restart finds
// the instance the first one made. Template values may be names: a
// vSwitch, security group or image that is not an id (vsw-, sg-, m-) is
// looked up by name once and the id kept.
package aliyun

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/wharf-platform/wharf/providers"
)

// Type is the provider type this package registers.
const Type = "aliyun"

const (
	// maxAttempts is how often the SDK tries one call (the first included).
	maxAttempts = 3
	// attemptTimeout bounds one attempt (the caller's context bounds the
	// call).
	attemptTimeout = 60 * time.Second
	// maxClientToken is ECS's limit on ClientToken: 64 ASCII characters.
	maxClientToken = 64
	// maxTags is ECS's limit on the tags of one instance.
	maxTags = 20
	// maxUserData is ECS's limit on UserData, base64-encoded.
	maxUserData = 32 << 10
)

func init() { providers.Register(Type, Open) }

// Provider is one Alibaba Cloud account in one region.
type Provider struct {
	region    string
	scheme    string // "https", or the endpoint's
	ecsHost   string // where ECS calls go (host or host:port)
	vpcHost   string // where VPC calls (DescribeVSwitches) go
	creds     credentials.CredentialsProvider
	transport http.RoundTripper // every call's client shares its connections
	attempts  int
	timeout   time.Duration // per attempt
	pageSize  int           // DescribeInstances page size for List

	mu     sync.Mutex
	shapes map[string]providers.Resources // per instance type; they never change
	ids    map[string]string              // resolved template names: kind + "\x00" + name → id
}

var _ providers.Provider = (*Provider)(nil)

var validRegion = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Open makes a Provider for an account of type aliyun.
func Open(acct providers.Account) (providers.Provider, error) {
	return open(acct)
}

func open(acct providers.Account) (*Provider, error) {
	if acct.Type != "" && acct.Type != Type {
		return nil, fmt.Errorf("aliyun: account %q has type %q", acct.Name, acct.Type)
	}
	if !validRegion.MatchString(acct.Region) {
		return nil, fmt.Errorf("aliyun: account %q needs a region (letters, digits, - and _)", acct.Name)
	}
	c := acct.Credentials
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return nil, fmt.Errorf("aliyun: account %q needs access_key_id and access_key_secret", acct.Name)
	}
	p := &Provider{
		region:   acct.Region,
		scheme:   "https",
		ecsHost:  "ecs." + acct.Region + ".aliyuncs.com",
		vpcHost:  "vpc." + acct.Region + ".aliyuncs.com",
		creds:    credentials.NewStaticAKCredentialsProvider(c.AccessKeyID, c.AccessKeySecret),
		attempts: maxAttempts,
		timeout:  attemptTimeout,
		pageSize: 100,
		shapes:   map[string]providers.Resources{},
		ids:      map[string]string{},
	}
	if acct.Endpoint != "" {
		u, err := url.Parse(acct.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("aliyun: account %q: endpoint must be an http or https URL without a path", acct.Name)
		}
		p.scheme, p.ecsHost, p.vpcHost = u.Scheme, u.Host, u.Host
	}
	tr := &http.Transport{
		Proxy:                 nil, // never from the environment
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: attemptTimeout,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	if acct.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the admin asked for it (a lab endpoint)
	}
	p.transport = tr
	return p, nil
}

// client makes the SDK client of one call: ctx reaches its requests
// through its transport (the SDK leaves a transport that is not an
// *http.Transport alone: no proxy from the environment, no TLS changes).
func (p *Provider) client(ctx context.Context) (*ecs.Client, error) {
	cfg := sdk.NewConfig()
	cfg.AutoRetry = p.attempts > 1
	cfg.MaxRetryTime = max(p.attempts-1, 0)
	cfg.Scheme = strings.ToUpper(p.scheme)
	cfg.Transport = &callTransport{ctx: ctx, base: p.transport}
	c := &ecs.Client{}
	if err := c.InitWithOptions(p.region, cfg, p.creds); err != nil {
		return nil, fmt.Errorf("aliyun: client: %w", err)
	}
	c.SetReadTimeout(p.timeout)
	return c, nil
}

// prepare points a request at the account's endpoint.
func (p *Provider) prepare(r *requests.RpcRequest) {
	r.Scheme = p.scheme
	r.Domain = p.ecsHost
	r.RegionId = p.region
}

// do runs one SDK call under ctx; op names it in errors.
func (p *Provider) do(ctx context.Context, op string, call func(*ecs.Client) error) error {
	if ctx.Err() != nil {
		return mapError(ctx, op, ctx.Err())
	}
	c, err := p.client(ctx)
	if err != nil {
		return err
	}
	if err := call(c); err != nil {
		return mapError(ctx, op, err)
	}
	return nil
}

// Check validates the credentials with DescribeRegions, and that ECS
// serves the account's region.
func (p *Provider) Check(ctx context.Context) error {
	r := ecs.CreateDescribeRegionsRequest()
	p.prepare(r.RpcRequest)
	var resp *ecs.DescribeRegionsResponse
	err := p.do(ctx, "check credentials", func(c *ecs.Client) (err error) {
		resp, err = c.DescribeRegions(r)
		return err
	})
	if err != nil {
		return err
	}
	var regions []string
	for _, rg := range resp.Regions.Region {
		if rg.RegionId == p.region {
			return nil
		}
		regions = append(regions, rg.RegionId)
	}
	return &providers.Error{Kind: providers.KindBadRequest, Code: "InvalidRegionId.NotFound",
		Message: fmt.Sprintf("ECS has no region %s (it lists %s)", p.region, strings.Join(regions, ", "))}
}

// Create runs one instance with req.MachineID as its ClientToken.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.Machine, error) {
	tags, err := checkCreate(req)
	if err != nil {
		return providers.Machine{}, err
	}
	t := req.Template
	vsw, err := p.resolve(ctx, kindVSwitch, t.VSwitch)
	if err != nil {
		return providers.Machine{}, err
	}
	sg, err := p.resolve(ctx, kindSecurityGroup, t.SecurityGroup)
	if err != nil {
		return providers.Machine{}, err
	}
	image, err := p.resolve(ctx, kindImage, t.Image)
	if err != nil {
		return providers.Machine{}, err
	}
	r := ecs.CreateRunInstancesRequest()
	p.prepare(r.RpcRequest)
	r.ClientToken = req.MachineID
	r.Amount = requests.NewInteger(1)
	r.MinAmount = requests.NewInteger(1)
	r.ImageId = image
	r.InstanceType = t.InstanceType
	r.VSwitchId = vsw
	r.SecurityGroupId = sg
	r.InstanceName = instanceName(req.Pool, req.MachineID)
	if len(req.UserData) > 0 {
		r.UserData = base64.StdEncoding.EncodeToString(req.UserData)
	}
	// Sorted, so that a retry sends the same request and ECS sees the same
	// parameters for the same client token.
	rt := make([]ecs.RunInstancesTag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		rt = append(rt, ecs.RunInstancesTag{Key: k, Value: tags[k]})
	}
	r.Tag = &rt
	var resp *ecs.RunInstancesResponse
	err = p.do(ctx, "run instance for machine "+req.MachineID, func(c *ecs.Client) (err error) {
		resp, err = c.RunInstances(r)
		return err
	})
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) && pe.Code == "IdempotentParameterMismatch" {
			// An earlier create of this machine ran with other parameters
			// (a leader's user data names the hub nodes alive then, or an
			// admin changed the template meanwhile): that instance is the
			// machine; a second would be a leak.
			if m, ok, ferr := p.byMachine(ctx, req.Cluster, req.MachineID); ferr == nil && ok {
				return m, nil
			}
		}
		if providers.KindOf(err) == providers.KindBadRequest {
			p.forget(t) // a name may now stand for another id
		}
		return providers.Machine{}, err
	}
	ids := resp.InstanceIdSets.InstanceIdSet
	if len(ids) != 1 {
		return providers.Machine{}, &providers.Error{Kind: providers.KindUnavailable, Message: fmt.Sprintf("RunInstances answered %d instances, want 1", len(ids))}
	}
	return providers.Machine{ProviderID: ids[0], MachineID: req.MachineID, State: providers.StatePending, Tags: tags}, nil
}

// checkCreate refuses a request ECS would refuse (a KindBadRequest error
// before any call) and returns the instance's tags.
func checkCreate(req providers.CreateRequest) (map[string]string, error) {
	bad := func(format string, args ...any) error {
		return &providers.Error{Kind: providers.KindBadRequest, Message: fmt.Sprintf(format, args...)}
	}
	t := req.Template
	switch {
	case req.MachineID == "":
		return nil, bad("create: no machine id")
	case len(req.MachineID) > maxClientToken || !printableASCII(req.MachineID):
		return nil, bad("create: machine id %q: ECS takes at most %d ASCII characters as a client token", req.MachineID, maxClientToken)
	case t.InstanceType == "" || t.Image == "" || t.VSwitch == "" || t.SecurityGroup == "":
		return nil, bad("create: the template needs instance_type, image, vswitch and security_group")
	case base64.StdEncoding.EncodedLen(len(req.UserData)) > maxUserData:
		return nil, bad("create: user data of %d bytes: ECS takes at most %d base64-encoded", len(req.UserData), maxUserData)
	}
	tags := maps.Clone(req.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	for k, v := range map[string]string{providers.TagCluster: req.Cluster, providers.TagPool: req.Pool, providers.TagMachine: req.MachineID} {
		if _, ok := tags[k]; !ok && v != "" {
			tags[k] = v
		}
	}
	if len(tags) > maxTags {
		return nil, bad("create: %d tags: ECS takes at most %d", len(tags), maxTags)
	}
	return tags, nil
}

// instanceName is <pool>-<machine> made acceptable to ECS: 2 to 128
// characters, a letter first, then letters, digits, '.', '_', '-', ':'.
func instanceName(pool, machine string) string {
	b := []byte(pool + "-" + machine)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			b[i] = '-'
		}
	}
	name := string(b)
	if c := name[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		name = "wharf-" + name
	}
	return name[:min(len(name), 128)]
}

// Delete deletes an instance, running or not (Force); one ECS no longer
// knows is gone already.
func (p *Provider) Delete(ctx context.Context, providerID string) error {
	if providerID == "" {
		return &providers.Error{Kind: providers.KindBadRequest, Message: "delete: no instance id"}
	}
	r := ecs.CreateDeleteInstanceRequest()
	p.prepare(r.RpcRequest)
	r.InstanceId = providerID
	r.Force = requests.NewBoolean(true)
	err := p.do(ctx, "delete "+providerID, func(c *ecs.Client) error {
		_, err := c.DeleteInstance(r)
		return err
	})
	if providers.KindOf(err) == providers.KindNotFound {
		return nil
	}
	return err
}

// Describe reports one instance.
func (p *Provider) Describe(ctx context.Context, providerID string) (providers.Machine, error) {
	ids, err := json.Marshal([]string{providerID})
	if err != nil {
		return providers.Machine{}, err
	}
	r := ecs.CreateDescribeInstancesRequest()
	p.prepare(r.RpcRequest)
	r.InstanceIds = string(ids)
	var resp *ecs.DescribeInstancesResponse
	err = p.do(ctx, "describe "+providerID, func(c *ecs.Client) (err error) {
		resp, err = c.DescribeInstances(r)
		return err
	})
	if err != nil {
		return providers.Machine{}, err
	}
	for _, in := range resp.Instances.Instance {
		if in.InstanceId == providerID {
			return machineOf(in), nil
		}
	}
	return providers.Machine{}, &providers.Error{Kind: providers.KindNotFound, Code: "InvalidInstanceId.NotFound", Message: "ECS has no instance " + providerID}
}

// List returns every instance tagged wharf-cluster=cluster, paged by
// NextToken. ECS lists an instance until it is deleted (Stopping on the
// way); deleted ones are absent.
func (p *Provider) List(ctx context.Context, cluster string) ([]providers.Machine, error) {
	var out []providers.Machine
	seen := map[string]bool{}
	token := ""
	for {
		r := ecs.CreateDescribeInstancesRequest()
		p.prepare(r.RpcRequest)
		r.Tag = &[]ecs.DescribeInstancesTag{{Key: providers.TagCluster, Value: cluster}}
		r.MaxResults = requests.NewInteger(p.pageSize)
		r.NextToken = token
		var resp *ecs.DescribeInstancesResponse
		err := p.do(ctx, "list machines of cluster "+cluster, func(c *ecs.Client) (err error) {
			resp, err = c.DescribeInstances(r)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, in := range resp.Instances.Instance {
			out = append(out, machineOf(in))
		}
		if token = resp.NextToken; token == "" {
			return out, nil
		}
		if seen[token] { // a cloud that pages in circles would keep us here
			return nil, &providers.Error{Kind: providers.KindUnavailable, Message: "DescribeInstances answered a NextToken twice"}
		}
		seen[token] = true
	}
}

// byMachine finds the live instance of a cluster's machine by its tags.
func (p *Provider) byMachine(ctx context.Context, cluster, machineID string) (providers.Machine, bool, error) {
	r := ecs.CreateDescribeInstancesRequest()
	p.prepare(r.RpcRequest)
	r.Tag = &[]ecs.DescribeInstancesTag{{Key: providers.TagCluster, Value: cluster}, {Key: providers.TagMachine, Value: machineID}}
	var resp *ecs.DescribeInstancesResponse
	err := p.do(ctx, "find machine "+machineID, func(c *ecs.Client) (err error) {
		resp, err = c.DescribeInstances(r)
		return err
	})
	if err != nil {
		return providers.Machine{}, false, err
	}
	for _, in := range resp.Instances.Instance {
		if m := machineOf(in); m.State != providers.StateGone && m.Tags[providers.TagMachine] == machineID {
			return m, true, nil
		}
	}
	return providers.Machine{}, false, nil
}

// machineOf maps an ECS instance.
func machineOf(in ecs.Instance) providers.Machine {
	m := providers.Machine{ProviderID: in.InstanceId, Tags: map[string]string{}, State: stateOf(in.Status)}
	for _, t := range in.Tags.Tag {
		m.Tags[t.TagKey] = t.TagValue
	}
	m.MachineID = m.Tags[providers.TagMachine]
	for _, ips := range [][]string{in.VpcAttributes.PrivateIpAddress.IpAddress, in.InnerIpAddress.IpAddress, in.PublicIpAddress.IpAddress} {
		for _, ip := range ips {
			if ip != "" && !slices.Contains(m.Addresses, ip) {
				m.Addresses = append(m.Addresses, ip)
			}
		}
	}
	return m
}

func stateOf(status string) providers.State {
	switch status {
	case "Pending", "Starting":
		return providers.StatePending
	case "Running":
		return providers.StateRunning
	case "Stopping", "Stopped":
		return providers.StateStopped
	}
	return providers.StatePending // a status ECS adds later: not gone, not usable yet
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
