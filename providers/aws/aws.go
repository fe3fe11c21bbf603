// Package aws drives Amazon EC2 for Wharf through the AWS SDK for Go v2.
// Importing it registers the provider type "aws".
//
// The client is built from the account alone: static credentials, the
// account's region and, when set, its endpoint (a simulator or a private
// endpoint). It never reads shared config files or the environment and
// never asks the instance metadata service. The SDK retries a call a few
// times (the hub's provisioner backs off between its own attempts).
//
// Create is idempotent through RunInstances' ClientToken, which is the
// machine id: a create retried after a lost answer or a hub restart finds
// the instance the first one made.
package aws

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/wharf-platform/wharf/providers"
)

// Type is the provider type this package registers.
const Type = "aws"

// maxAttempts is how often the SDK tries one call (the first included).
const maxAttempts = 3

// maxClientToken is EC2's limit on ClientToken: 64 ASCII characters.
const maxClientToken = 64

func init() { providers.Register(Type, Open) }

// Provider is one AWS account in one region.
type Provider struct {
	client   *ec2.Client
	pageSize int32 // DescribeInstances page size for List

	mu     sync.Mutex
	shapes map[string]providers.Resources // per instance type; they never change
}

var _ providers.Provider = (*Provider)(nil)

// Open makes a Provider for an account of type aws.
func Open(acct providers.Account) (providers.Provider, error) {
	return open(acct, nil)
}

// open builds the client; tune, when set, changes the SDK options last
// (tests use it for a retryer without backoff).
func open(acct providers.Account, tune func(*ec2.Options)) (*Provider, error) {
	if acct.Type != "" && acct.Type != Type {
		return nil, fmt.Errorf("aws: account %q has type %q", acct.Name, acct.Type)
	}
	if acct.Region == "" {
		return nil, fmt.Errorf("aws: account %q needs a region", acct.Name)
	}
	c := acct.Credentials
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return nil, fmt.Errorf("aws: account %q needs access_key_id and secret_access_key", acct.Name)
	}
	// The credentials are captured by value: the SDK never looks them up
	// anywhere else (no files, environment or metadata service).
	creds := sdk.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Source: "wharf"}
	opts := ec2.Options{
		Region:       acct.Region,
		DefaultsMode: sdk.DefaultsModeStandard,
		Credentials: sdk.CredentialsProviderFunc(func(context.Context) (sdk.Credentials, error) {
			return creds, nil
		}),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = maxAttempts }),
	}
	if acct.Endpoint != "" {
		u, err := url.Parse(acct.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("aws: account %q: endpoint must be an http or https URL", acct.Name)
		}
		opts.BaseEndpoint = sdk.String(acct.Endpoint)
	}
	hc := awshttp.NewBuildableClient()
	if acct.Insecure {
		hc = hc.WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the admin asked for it (a lab endpoint)
		})
	}
	opts.HTTPClient = hc
	if tune != nil {
		tune(&opts)
	}
	return &Provider{client: ec2.New(opts), pageSize: 1000, shapes: map[string]providers.Resources{}}, nil
}

// Check validates the credentials (and region) with DescribeRegions.
func (p *Provider) Check(ctx context.Context) error {
	if _, err := p.client.DescribeRegions(ctx, &ec2.DescribeRegionsInput{}); err != nil {
		return mapError("check credentials", err)
	}
	return nil
}

// Create runs one instance with req.MachineID as its ClientToken.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.Machine, error) {
	in, err := runInput(req)
	if err != nil {
		return providers.Machine{}, err
	}
	out, err := p.client.RunInstances(ctx, in)
	if err != nil {
		e := mapError("run instance for machine "+req.MachineID, err)
		var pe *providers.Error
		if errors.As(e, &pe) && pe.Code == "IdempotentParameterMismatch" {
			// An earlier create of this machine ran with other parameters
			// (a leader's user data names the hub nodes alive then, or an
			// admin changed the template meanwhile): that instance is the
			// machine; a second would be a leak.
			if m, ok, ferr := p.byMachine(ctx, req.Cluster, req.MachineID); ferr == nil && ok {
				return m, nil
			}
		}
		return providers.Machine{}, e
	}
	if len(out.Instances) != 1 {
		return providers.Machine{}, &providers.Error{Kind: providers.KindUnavailable, Message: fmt.Sprintf("RunInstances answered %d instances, want 1", len(out.Instances))}
	}
	return machineOf(out.Instances[0]), nil
}

// runInput builds RunInstances from a create request; bad input is a
// KindBadRequest error before any call.
func runInput(req providers.CreateRequest) (*ec2.RunInstancesInput, error) {
	bad := func(format string, args ...any) error {
		return &providers.Error{Kind: providers.KindBadRequest, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case req.MachineID == "":
		return nil, bad("create: no machine id")
	case len(req.MachineID) > maxClientToken || !printableASCII(req.MachineID):
		return nil, bad("create: machine id %q: EC2 takes at most %d ASCII characters as a client token", req.MachineID, maxClientToken)
	case req.Template.InstanceType == "" || req.Template.Image == "":
		return nil, bad("create: the template needs instance_type and image")
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
	if _, ok := tags["Name"]; !ok {
		tags["Name"] = req.Pool + "-" + req.MachineID
	}
	// Sorted, so that a retry sends the same request and EC2 sees the
	// same parameters for the same client token.
	var sdkTags []types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		sdkTags = append(sdkTags, types.Tag{Key: sdk.String(k), Value: sdk.String(tags[k])})
	}
	in := &ec2.RunInstancesInput{
		ImageId:      sdk.String(req.Template.Image),
		InstanceType: types.InstanceType(req.Template.InstanceType),
		MinCount:     sdk.Int32(1),
		MaxCount:     sdk.Int32(1),
		ClientToken:  sdk.String(req.MachineID),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: sdkTags},
		},
	}
	if req.Template.Subnet != "" {
		in.SubnetId = sdk.String(req.Template.Subnet)
	}
	for _, g := range req.Template.SecurityGroups {
		if strings.HasPrefix(g, "sg-") {
			in.SecurityGroupIds = append(in.SecurityGroupIds, g)
		} else {
			in.SecurityGroups = append(in.SecurityGroups, g)
		}
	}
	if req.Template.KeyName != "" {
		in.KeyName = sdk.String(req.Template.KeyName)
	}
	if len(req.UserData) > 0 {
		in.UserData = sdk.String(base64.StdEncoding.EncodeToString(req.UserData))
	}
	return in, nil
}

// Delete terminates an instance; one EC2 no longer knows is gone already.
func (p *Provider) Delete(ctx context.Context, providerID string) error {
	_, err := p.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{providerID}})
	if err != nil {
		if e := mapError("terminate "+providerID, err); providers.KindOf(e) != providers.KindNotFound {
			return e
		}
	}
	return nil
}

// Describe reports one instance.
func (p *Provider) Describe(ctx context.Context, providerID string) (providers.Machine, error) {
	out, err := p.client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{providerID}})
	if err != nil {
		return providers.Machine{}, mapError("describe "+providerID, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if sdk.ToString(in.InstanceId) == providerID {
				return machineOf(in), nil
			}
		}
	}
	return providers.Machine{}, &providers.Error{Kind: providers.KindNotFound, Code: "InvalidInstanceID.NotFound", Message: "no instance " + providerID}
}

// List returns every instance tagged wharf-cluster=cluster, terminated
// ones included while EC2 lists them.
func (p *Provider) List(ctx context.Context, cluster string) ([]providers.Machine, error) {
	in := &ec2.DescribeInstancesInput{
		Filters:    []types.Filter{{Name: sdk.String("tag:" + providers.TagCluster), Values: []string{cluster}}},
		MaxResults: sdk.Int32(p.pageSize),
	}
	var out []providers.Machine
	pages := ec2.NewDescribeInstancesPaginator(p.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, mapError("list machines of cluster "+cluster, err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				out = append(out, machineOf(inst))
			}
		}
	}
	return out, nil
}

// byMachine finds the live instance of a cluster's machine by its tags.
func (p *Provider) byMachine(ctx context.Context, cluster, machineID string) (providers.Machine, bool, error) {
	out, err := p.client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: sdk.String("tag:" + providers.TagCluster), Values: []string{cluster}},
		{Name: sdk.String("tag:" + providers.TagMachine), Values: []string{machineID}},
		{Name: sdk.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	if err != nil {
		return providers.Machine{}, false, mapError("find machine "+machineID, err)
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			return machineOf(inst), true, nil
		}
	}
	return providers.Machine{}, false, nil
}

// Shape is the instance type's vCPUs and memory, asked once per type.
func (p *Provider) Shape(ctx context.Context, t providers.Template) (providers.Resources, bool, error) {
	if t.InstanceType == "" {
		return providers.Resources{}, false, nil
	}
	p.mu.Lock()
	r, ok := p.shapes[t.InstanceType]
	p.mu.Unlock()
	if ok {
		return r, true, nil
	}
	out, err := p.client.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceType(t.InstanceType)}})
	if err != nil {
		return providers.Resources{}, false, mapError("describe instance type "+t.InstanceType, err)
	}
	for _, it := range out.InstanceTypes {
		if string(it.InstanceType) != t.InstanceType || it.VCpuInfo == nil || it.MemoryInfo == nil {
			continue
		}
		r = providers.Resources{
			CPUMillis:   int64(sdk.ToInt32(it.VCpuInfo.DefaultVCpus)) * 1000,
			MemoryBytes: sdk.ToInt64(it.MemoryInfo.SizeInMiB) << 20,
		}
		p.mu.Lock()
		p.shapes[t.InstanceType] = r
		p.mu.Unlock()
		return r, true, nil
	}
	return providers.Resources{}, false, &providers.Error{Kind: providers.KindBadRequest, Code: "InvalidInstanceType", Message: "EC2 does not describe instance type " + t.InstanceType}
}

// machineOf maps an EC2 instance.
func machineOf(in types.Instance) providers.Machine {
	m := providers.Machine{ProviderID: sdk.ToString(in.InstanceId), Tags: map[string]string{}}
	for _, t := range in.Tags {
		m.Tags[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
	}
	m.MachineID = m.Tags[providers.TagMachine]
	if in.State != nil {
		m.State = stateOf(in.State.Name)
	}
	for _, a := range []*string{in.PrivateIpAddress, in.PublicIpAddress} {
		if sdk.ToString(a) != "" {
			m.Addresses = append(m.Addresses, *a)
		}
	}
	return m
}

func stateOf(s types.InstanceStateName) providers.State {
	switch s {
	case types.InstanceStateNamePending:
		return providers.StatePending
	case types.InstanceStateNameRunning:
		return providers.StateRunning
	case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		return providers.StateStopped
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
		return providers.StateGone
	}
	return providers.StatePending // a state EC2 adds later: not gone, not usable yet
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
