package aliyun

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/wharf-platform/wharf/providers"
)

// What a template value names, and the prefix of its ids.
const (
	kindVSwitch       = "vSwitch"
	kindSecurityGroup = "security group"
	kindImage         = "image"
)

var idPrefix = map[string]string{kindVSwitch: "vsw-", kindSecurityGroup: "sg-", kindImage: "m-"}

// resolve returns the id a template value stands for: the value itself
// when it is an id, else the one resource of that kind with that name
// (asked once, then kept). An image may also be given by a public
// image's id (ubuntu_22_04_x64_..., not m-...).
func (p *Provider) resolve(ctx context.Context, kind, value string) (string, error) {
	if strings.HasPrefix(value, idPrefix[kind]) {
		return value, nil
	}
	key := kind + "\x00" + value
	p.mu.Lock()
	id, ok := p.ids[key]
	p.mu.Unlock()
	if ok {
		return id, nil
	}
	ids, err := p.lookup(ctx, kind, "name", value)
	if err == nil && len(ids) == 0 && kind == kindImage {
		ids, err = p.lookup(ctx, kind, "id", value)
	}
	switch {
	case err != nil:
		return "", err
	case len(ids) == 0:
		return "", &providers.Error{Kind: providers.KindBadRequest, Code: "InvalidTemplate", Message: fmt.Sprintf("no %s named %q in region %s", kind, value, p.region)}
	case len(ids) > 1:
		return "", &providers.Error{Kind: providers.KindBadRequest, Code: "InvalidTemplate",
			Message: fmt.Sprintf("%d %ss are named %q in region %s (%s): give its id", len(ids), kind, value, p.region, strings.Join(ids, ", "))}
	}
	p.mu.Lock()
	p.ids[key] = ids[0]
	p.mu.Unlock()
	return ids[0], nil
}

// forget drops the ids a template's names resolved to.
func (p *Provider) forget(t providers.Template) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for kind, v := range map[string]string{kindVSwitch: t.VSwitch, kindSecurityGroup: t.SecurityGroup, kindImage: t.Image} {
		delete(p.ids, kind+"\x00"+v)
	}
}

// lookup asks ECS (or VPC, for vSwitches) for the ids of the resources
// of a kind whose name (by "name") or id (by "id") is exactly value.
// Names are filters that may match loosely; only exact matches count.
func (p *Provider) lookup(ctx context.Context, kind, by, value string) ([]string, error) {
	var ids []string
	op := fmt.Sprintf("look up %s %q", kind, value)
	switch kind {
	case kindVSwitch:
		// vSwitches belong to the VPC API, which the ECS package does not
		// hold: a common request, answered as the VPC API documents.
		cr := requests.NewCommonRequest()
		cr.Method = requests.POST
		cr.Scheme = p.scheme
		cr.Domain = p.vpcHost
		cr.RegionId = p.region
		cr.Product = "Vpc"
		cr.Version = "2016-04-28"
		cr.ApiName = "DescribeVSwitches"
		cr.QueryParams["RegionId"] = p.region
		cr.QueryParams["VSwitchName"] = value
		cr.QueryParams["PageSize"] = "50"
		var body []byte
		err := p.do(ctx, op, func(c *ecs.Client) error {
			resp, err := c.ProcessCommonRequest(cr)
			if err == nil {
				body = resp.GetHttpContentBytes()
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		var out struct {
			VSwitches struct {
				VSwitch []struct {
					VSwitchID   string `json:"VSwitchId"`
					VSwitchName string `json:"VSwitchName"`
				} `json:"VSwitch"`
			} `json:"VSwitches"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, &providers.Error{Kind: providers.KindUnavailable, Message: "DescribeVSwitches answered what is not JSON", Err: err}
		}
		for _, v := range out.VSwitches.VSwitch {
			if v.VSwitchName == value {
				ids = append(ids, v.VSwitchID)
			}
		}
	case kindSecurityGroup:
		r := ecs.CreateDescribeSecurityGroupsRequest()
		p.prepare(r.RpcRequest)
		r.SecurityGroupName = value
		r.PageSize = requests.NewInteger(50)
		var resp *ecs.DescribeSecurityGroupsResponse
		if err := p.do(ctx, op, func(c *ecs.Client) (err error) { resp, err = c.DescribeSecurityGroups(r); return err }); err != nil {
			return nil, err
		}
		for _, g := range resp.SecurityGroups.SecurityGroup {
			if g.SecurityGroupName == value {
				ids = append(ids, g.SecurityGroupId)
			}
		}
	case kindImage:
		r := ecs.CreateDescribeImagesRequest()
		p.prepare(r.RpcRequest)
		if by == "id" {
			r.ImageId = value
		} else {
			r.ImageName = value
		}
		r.PageSize = requests.NewInteger(100)
		var resp *ecs.DescribeImagesResponse
		if err := p.do(ctx, op, func(c *ecs.Client) (err error) { resp, err = c.DescribeImages(r); return err }); err != nil {
			return nil, err
		}
		for _, im := range resp.Images.Image {
			if by == "id" && im.ImageId == value || by == "name" && im.ImageName == value {
				ids = append(ids, im.ImageId)
			}
		}
	}
	return ids, nil
}

// Shape is the instance type's vCPUs and memory, asked once per type.
// ECS answers memory as a decimal number of GiB: it is converted from
// its decimal text, never through a float.
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
	req := ecs.CreateDescribeInstanceTypesRequest()
	p.prepare(req.RpcRequest)
	req.InstanceTypes = &[]string{t.InstanceType}
	var body []byte
	err := p.do(ctx, "describe instance type "+t.InstanceType, func(c *ecs.Client) error {
		resp, err := c.DescribeInstanceTypes(req)
		if err == nil {
			body = resp.GetHttpContentBytes()
		}
		return err
	})
	if err != nil {
		return providers.Resources{}, false, err
	}
	var out struct {
		InstanceTypes struct {
			InstanceType []struct {
				InstanceTypeID string      `json:"InstanceTypeId"`
				CPUCoreCount   int64       `json:"CpuCoreCount"`
				MemorySize     json.Number `json:"MemorySize"`
			} `json:"InstanceType"`
		} `json:"InstanceTypes"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return providers.Resources{}, false, &providers.Error{Kind: providers.KindUnavailable, Message: "DescribeInstanceTypes answered what is not JSON", Err: err}
	}
	for _, it := range out.InstanceTypes.InstanceType {
		if it.InstanceTypeID != t.InstanceType {
			continue
		}
		mem, err := gibToBytes(string(it.MemorySize))
		if err != nil || it.CPUCoreCount <= 0 {
			return providers.Resources{}, false, &providers.Error{Kind: providers.KindUnavailable,
				Message: fmt.Sprintf("DescribeInstanceTypes answered %s with %d cores and memory %q", t.InstanceType, it.CPUCoreCount, it.MemorySize)}
		}
		r = providers.Resources{CPUMillis: it.CPUCoreCount * 1000, MemoryBytes: mem}
		p.mu.Lock()
		p.shapes[t.InstanceType] = r
		p.mu.Unlock()
		return r, true, nil
	}
	return providers.Resources{}, false, &providers.Error{Kind: providers.KindBadRequest, Code: "InvalidInstanceType.ValueNotSupported",
		Message: fmt.Sprintf("ECS does not describe instance type %s in region %s", t.InstanceType, p.region)}
}

var decimal = regexp.MustCompile(`^[0-9]{1,20}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?$`)

// gibToBytes converts a decimal number of GiB ("0.5", "8", "3.75",
// "1.5e1") to bytes exactly, rounding a fraction of a byte down.
func gibToBytes(gib string) (int64, error) {
	if !decimal.MatchString(gib) { // nor a huge exponent big.Rat would expand
		return 0, fmt.Errorf("memory %q is not a decimal number", gib)
	}
	r, ok := new(big.Rat).SetString(gib)
	if !ok || r.Sign() <= 0 {
		return 0, fmt.Errorf("memory %q is not a positive decimal", gib)
	}
	r.Mul(r, new(big.Rat).SetInt64(1<<30))
	b := new(big.Int).Quo(r.Num(), r.Denom())
	if !b.IsInt64() {
		return 0, fmt.Errorf("memory %q GiB does not fit in bytes", gib)
	}
	return b.Int64(), nil
}
