package cloudsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

const (
	ecsMaxUserData = 32 << 10 // ECS's limit on UserData, base64-encoded
	ecsMaxAmount   = 100
	ecsTimeMinutes = "2006-01-02T15:04Z" // how ECS writes CreationTime
)

// ecsRunRequest is a decoded RunInstances: what a ClientToken's
// fingerprint covers.
type ecsRunRequest struct {
	ImageID, InstanceType, VSwitchID, SecurityGroupID, InstanceName, HostName string
	Amount, MinAmount                                                         int
	Tags                                                                      []ecsTag
	UserData                                                                  []byte
}

func (r ecsRunRequest) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q %q %d %d\n", r.ImageID, r.InstanceType, r.VSwitchID, r.SecurityGroupID, r.InstanceName, r.HostName, r.Amount, r.MinAmount)
	tags := slices.Clone(r.Tags)
	slices.SortFunc(tags, func(a, b ecsTag) int { return strings.Compare(a.key, b.key) })
	for _, t := range tags {
		fmt.Fprintf(h, "%q=%q\n", t.key, t.value)
	}
	h.Write(r.UserData)
	return hex.EncodeToString(h.Sum(nil))
}

// validInstanceName is ECS's rule: 2 to 128 characters, a letter first,
// then letters, digits, '.', '_', '-' and ':', and no URL.
func validInstanceName(n string) bool {
	if len(n) < 2 || len(n) > 128 || strings.HasPrefix(n, "http://") || strings.HasPrefix(n, "https://") {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':')) {
			return false
		}
	}
	return true
}

func (s *ECS) decodeRun(p ecsParams) (ecsRunRequest, *ecsError) {
	var r ecsRunRequest
	if r.ImageID = p["ImageId"]; r.ImageID == "" {
		return r, ecsMissing("ImageId")
	}
	if !slices.ContainsFunc(s.images, func(im ECSImage) bool { return im.ID == r.ImageID }) {
		return r, ecsErr("InvalidImageId.NotFound", "The specified ImageId %q does not exist.", truncate(r.ImageID, 64))
	}
	if r.InstanceType = p["InstanceType"]; r.InstanceType == "" {
		return r, ecsMissing("InstanceType")
	}
	if _, ok := s.types[r.InstanceType]; !ok {
		return r, ecsErr("InvalidInstanceType.ValueNotSupported", "The specified InstanceType %q does not exist or beyond the permitted range.", truncate(r.InstanceType, 64))
	}
	if r.VSwitchID = p["VSwitchId"]; r.VSwitchID != "" && s.vswitch(r.VSwitchID) == nil {
		return r, ecsErr("InvalidVSwitchId.NotFound", "The specified VSwitchId %q does not exist.", truncate(r.VSwitchID, 64))
	}
	if r.SecurityGroupID = p["SecurityGroupId"]; r.SecurityGroupID != "" &&
		!slices.ContainsFunc(s.groups, func(g ECSSecurityGroup) bool { return g.ID == r.SecurityGroupID }) {
		return r, ecsErr("InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId %q does not exist.", truncate(r.SecurityGroupID, 64))
	}
	if r.InstanceName = p["InstanceName"]; r.InstanceName != "" && !validInstanceName(r.InstanceName) {
		return r, ecsInvalid("InvalidInstanceName.Malformed", "InstanceName", r.InstanceName)
	}
	if r.HostName = p["HostName"]; len(r.HostName) > 64 {
		return r, ecsInvalid("InvalidHostName.Malformed", "HostName", r.HostName)
	}
	var eerr *ecsError
	if r.Amount, eerr = ecsInt(p, "Amount", 1, 1, ecsMaxAmount); eerr != nil {
		return r, eerr
	}
	if r.MinAmount, eerr = ecsInt(p, "MinAmount", r.Amount, 1, r.Amount); eerr != nil {
		return r, eerr
	}
	if r.Tags, eerr = ecsTags(p); eerr != nil {
		return r, eerr
	}
	seen := map[string]bool{}
	for _, t := range r.Tags {
		lk := strings.ToLower(t.key)
		switch {
		case len(t.key) > 128 || strings.HasPrefix(lk, "aliyun") || strings.HasPrefix(lk, "acs:") || strings.Contains(lk, "http://") || strings.Contains(lk, "https://"):
			return r, ecsInvalid("InvalidTagKey.Malformed", "Tag.N.Key", t.key)
		case len(t.value) > 128 || strings.Contains(t.value, "http://") || strings.Contains(t.value, "https://"):
			return r, ecsInvalid("InvalidTagValue.Malformed", "Tag.N.Value", t.value)
		case seen[t.key]:
			return r, ecsInvalid("InvalidTagKey.Duplicate", "Tag.N.Key", t.key)
		}
		seen[t.key] = true
	}
	if ud, ok := p["UserData"]; ok {
		if len(ud) > ecsMaxUserData {
			return r, ecsErr("InvalidUserData.SizeExceeded", "The specified UserData exceeds %d bytes once base64-encoded.", ecsMaxUserData)
		}
		b, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return r, ecsErr("InvalidUserData.Base64FormatInvalid", "The specified UserData is not valid base64.")
		}
		r.UserData = b
	}
	return r, nil
}

func (s *ECS) vswitch(id string) *ECSVSwitch {
	for i := range s.vsws {
		if s.vsws[i].ID == id {
			return &s.vsws[i]
		}
	}
	return nil
}

type ecsRunResponse struct {
	ecsHeader
	OrderID        string  `json:"OrderId"`
	TradePrice     float64 `json:"TradePrice"`
	InstanceIDSets struct {
		InstanceIDSet []string `json:"InstanceIdSet"`
	} `json:"InstanceIdSets"`
}

func ecsRunAnswer(ids []string) *ecsRunResponse {
	out := &ecsRunResponse{}
	out.InstanceIDSets.InstanceIDSet = slices.Clone(ids)
	return out
}

func (s *ECS) runInstances(p ecsParams) (ecsResponse, *ecsError) {
	token := p["ClientToken"]
	if len(token) > 64 || !printableASCII(token) {
		return nil, ecsInvalid("InvalidParameter", "ClientToken", token)
	}
	req, eerr := s.decodeRun(p)
	if eerr != nil {
		return nil, eerr
	}
	fp := req.fingerprint()
	if run := s.tokens[token]; token != "" && run != nil {
		if run.fingerprint != fp {
			return nil, ecsErr("IdempotentParameterMismatch", "The specified parameters differ from those of an earlier request with the same ClientToken.")
		}
		return ecsRunAnswer(run.ids), nil
	}
	count := req.Amount
	if s.maxInstances > 0 {
		free := s.maxInstances - len(s.instances)
		if free < req.MinAmount {
			return nil, ecsErr("QuotaExceed.ElasticQuota", "No additional quota is available: the account may have %d more instance(s), %d asked for.", max(free, 0), req.MinAmount)
		}
		count = min(count, free)
	}
	zone, vpc := s.region+"-a", ""
	if v := s.vswitch(req.VSwitchID); v != nil {
		zone, vpc = v.ZoneID, v.VpcID
	}
	tags := map[string]string{}
	for _, t := range req.Tags {
		tags[t.key] = t.value
	}
	run := &ecsRun{fingerprint: fp}
	now := time.Now().UTC()
	for range count {
		s.seq++
		in := &ecsInstance{seq: s.seq, ECSInstance: ECSInstance{
			ID:              "i-" + randomHex(10),
			Name:            req.InstanceName,
			ClientToken:     token,
			ImageID:         req.ImageID,
			InstanceType:    req.InstanceType,
			VSwitchID:       req.VSwitchID,
			VpcID:           vpc,
			ZoneID:          zone,
			SecurityGroupID: req.SecurityGroupID,
			Tags:            tags,
			UserData:        req.UserData,
			Status:          ECSPending,
			PrivateIP:       fmt.Sprintf("172.16.%d.%d", s.seq/250%250, s.seq%250+2),
			CreationTime:    now,
		}}
		if in.Name == "" {
			in.Name = in.ID
		}
		run.ids = append(run.ids, in.ID)
		s.createLocked(in)
	}
	if token != "" {
		s.tokens[token] = run
	}
	return ecsRunAnswer(run.ids), nil
}

type ecsIPs struct {
	IPAddress []string `json:"IpAddress"`
}

type ecsJSONTag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

type ecsJSONInstance struct {
	InstanceID          string `json:"InstanceId"`
	InstanceName        string `json:"InstanceName"`
	HostName            string `json:"HostName"`
	Status              string `json:"Status"`
	InstanceType        string `json:"InstanceType"`
	ImageID             string `json:"ImageId"`
	RegionID            string `json:"RegionId"`
	ZoneID              string `json:"ZoneId"`
	CPU                 int    `json:"Cpu"`
	Memory              int64  `json:"Memory"`
	CreationTime        string `json:"CreationTime"`
	InstanceChargeType  string `json:"InstanceChargeType"`
	InstanceNetworkType string `json:"InstanceNetworkType"`
	OSType              string `json:"OSType"`
	SecurityGroupIDs    struct {
		SecurityGroupID []string `json:"SecurityGroupId"`
	} `json:"SecurityGroupIds"`
	VpcAttributes struct {
		VpcID            string `json:"VpcId"`
		VSwitchID        string `json:"VSwitchId"`
		PrivateIPAddress ecsIPs `json:"PrivateIpAddress"`
	} `json:"VpcAttributes"`
	InnerIPAddress  ecsIPs `json:"InnerIpAddress"`
	PublicIPAddress ecsIPs `json:"PublicIpAddress"`
	Tags            struct {
		Tag []ecsJSONTag `json:"Tag"`
	} `json:"Tags"`
}

func (s *ECS) jsonInstance(in *ecsInstance) ecsJSONInstance {
	t := s.types[in.InstanceType]
	mib, _ := gibToMiB(t.MemoryGiB) // checked by NewECS
	x := ecsJSONInstance{
		InstanceID: in.ID, InstanceName: in.Name, HostName: in.ID, Status: in.Status, InstanceType: in.InstanceType,
		ImageID: in.ImageID, RegionID: s.region, ZoneID: in.ZoneID, CPU: t.CPUCores, Memory: mib,
		CreationTime: in.CreationTime.Format(ecsTimeMinutes), InstanceChargeType: "PostPaid", InstanceNetworkType: "vpc", OSType: "linux",
		InnerIPAddress: ecsIPs{IPAddress: []string{}}, PublicIPAddress: ecsIPs{IPAddress: []string{}},
	}
	x.SecurityGroupIDs.SecurityGroupID = []string{}
	if in.SecurityGroupID != "" {
		x.SecurityGroupIDs.SecurityGroupID = []string{in.SecurityGroupID}
	}
	x.VpcAttributes.VpcID, x.VpcAttributes.VSwitchID = in.VpcID, in.VSwitchID
	x.VpcAttributes.PrivateIPAddress.IPAddress = []string{in.PrivateIP}
	x.Tags.Tag = []ecsJSONTag{}
	for _, k := range slices.Sorted(maps.Keys(in.Tags)) {
		x.Tags.Tag = append(x.Tags.Tag, ecsJSONTag{TagKey: k, TagValue: in.Tags[k]})
	}
	return x
}

type ecsDescribeInstancesResponse struct {
	ecsHeader
	ecsPageInfo
	Instances struct {
		Instance []ecsJSONInstance `json:"Instance"`
	} `json:"Instances"`
}

// describeInstances filters by InstanceIds (a JSON array), Tag.N, Status,
// InstanceName (* as a wildcard), VSwitchId, VpcId, ZoneId, ImageId,
// InstanceType and SecurityGroupId; unknown ids are simply not answered.
func (s *ECS) describeInstances(p ecsParams) (ecsResponse, *ecsError) {
	ids, eerr := ecsJSONList(p, "InstanceIds", 100)
	if eerr != nil {
		return nil, eerr
	}
	tags, eerr := ecsTags(p)
	if eerr != nil {
		return nil, eerr
	}
	want := map[string]string{}
	for _, k := range []string{"Status", "VSwitchId", "VpcId", "ZoneId", "ImageId", "InstanceType", "SecurityGroupId"} {
		if v := p[k]; v != "" {
			want[k] = v
		}
	}
	name := p["InstanceName"]
	var matched []*ecsInstance
	for _, in := range s.order {
		have := map[string]string{"Status": in.Status, "VSwitchId": in.VSwitchID, "VpcId": in.VpcID, "ZoneId": in.ZoneID,
			"ImageId": in.ImageID, "InstanceType": in.InstanceType, "SecurityGroupId": in.SecurityGroupID}
		ok := (len(ids) == 0 || slices.Contains(ids, in.ID)) && (name == "" || match(name, in.Name))
		for k, v := range want {
			ok = ok && have[k] == v
		}
		for _, t := range tags {
			v, has := in.Tags[t.key]
			ok = ok && has && (t.value == "" || v == t.value)
		}
		if ok {
			matched = append(matched, in)
		}
	}
	page, info, eerr := ecsPage(p, matched, func(in *ecsInstance) int64 { return in.seq }, 100, true)
	if eerr != nil {
		return nil, eerr
	}
	out := &ecsDescribeInstancesResponse{ecsPageInfo: info}
	out.Instances.Instance = []ecsJSONInstance{}
	for _, in := range page {
		out.Instances.Instance = append(out.Instances.Instance, s.jsonInstance(in))
	}
	return out, nil
}

// deleteLocked deletes an instance (Force: also a running one) or says
// why it cannot; deleteLocked(in, force, false) only checks.
func (s *ECS) deleteLocked(in *ecsInstance, force, apply bool) *ecsError {
	switch {
	case in.Status == ECSStopped:
		if apply {
			s.removeLocked(in)
		}
	case in.Status == ECSStopping && in.deleting:
		// on its way already
	case !force:
		return ecsErr("IncorrectInstanceStatus", "The current status %s of instance %s does not support this operation; stop it first or use Force.", in.Status, in.ID)
	case apply:
		in.Status = ECSStopping
		in.deleting = true
		in.cancel()
	}
	return nil
}

type ecsEmptyResponse struct{ ecsHeader }

func (s *ECS) deleteInstance(p ecsParams) (ecsResponse, *ecsError) {
	id := p["InstanceId"]
	if id == "" {
		return nil, ecsMissing("InstanceId")
	}
	force, eerr := ecsBool(p, "Force")
	if eerr != nil {
		return nil, eerr
	}
	in := s.instances[id]
	if in == nil {
		return nil, ecsErr("InvalidInstanceId.NotFound", "The specified InstanceId %q does not exist.", truncate(id, 64))
	}
	if eerr := s.deleteLocked(in, force, true); eerr != nil {
		return nil, eerr
	}
	return &ecsEmptyResponse{}, nil
}

func (s *ECS) deleteInstances(p ecsParams) (ecsResponse, *ecsError) {
	ids, eerr := ecsRepeated(p, "InstanceId", 100)
	if eerr != nil {
		return nil, eerr
	}
	if len(ids) == 0 {
		return nil, ecsMissing("InstanceId.1")
	}
	force, eerr := ecsBool(p, "Force")
	if eerr != nil {
		return nil, eerr
	}
	var missing []string
	for _, id := range ids {
		if s.instances[id] == nil {
			missing = append(missing, truncate(id, 64))
		}
	}
	if len(missing) > 0 {
		return nil, ecsErr("InvalidInstanceId.NotFound", "The specified InstanceIds %s do not exist.", strings.Join(missing, ", "))
	}
	for _, apply := range []bool{false, true} { // all or nothing
		for _, id := range ids {
			if eerr := s.deleteLocked(s.instances[id], force, apply); eerr != nil {
				return nil, eerr
			}
		}
	}
	return &ecsEmptyResponse{}, nil
}

type ecsRegionsResponse struct {
	ecsHeader
	Regions struct {
		Region []ecsJSONRegion `json:"Region"`
	} `json:"Regions"`
}

type ecsJSONRegion struct {
	RegionID       string `json:"RegionId"`
	LocalName      string `json:"LocalName"`
	RegionEndpoint string `json:"RegionEndpoint"`
	Status         string `json:"Status"`
}

// describeRegions lists the one region the simulator serves.
func (s *ECS) describeRegions(p ecsParams) (ecsResponse, *ecsError) {
	out := &ecsRegionsResponse{}
	out.Regions.Region = []ecsJSONRegion{{RegionID: s.region, LocalName: s.region, RegionEndpoint: "ecs." + s.region + ".aliyuncs.com", Status: "available"}}
	return out, nil
}

type ecsJSONInstanceType struct {
	InstanceTypeID     string      `json:"InstanceTypeId"`
	InstanceTypeFamily string      `json:"InstanceTypeFamily"`
	CPUCoreCount       int         `json:"CpuCoreCount"`
	MemorySize         json.Number `json:"MemorySize"`
	CPUArchitecture    string      `json:"CpuArchitecture"`
}

type ecsInstanceTypesResponse struct {
	ecsHeader
	NextToken     string `json:"NextToken"`
	InstanceTypes struct {
		InstanceType []ecsJSONInstanceType `json:"InstanceType"`
	} `json:"InstanceTypes"`
}

// describeInstanceTypes answers InstanceTypes.N (at most 10; types it
// does not know are left out, as ECS does) or InstanceTypeFamily, paged
// by NextToken and MaxResults.
func (s *ECS) describeInstanceTypes(p ecsParams) (ecsResponse, *ecsError) {
	names, eerr := ecsRepeated(p, "InstanceTypes", 10)
	if eerr != nil {
		return nil, eerr
	}
	family := p["InstanceTypeFamily"]
	var all []ecsJSONInstanceType
	for _, n := range slices.Sorted(maps.Keys(s.types)) {
		t := s.types[n]
		fam := n[:max(strings.LastIndexByte(n, '.'), 0)]
		if len(names) > 0 && !slices.Contains(names, n) || family != "" && fam != family {
			continue
		}
		all = append(all, ecsJSONInstanceType{InstanceTypeID: n, InstanceTypeFamily: fam, CPUCoreCount: t.CPUCores, MemorySize: json.Number(t.MemoryGiB), CPUArchitecture: "X86"})
	}
	idx := func(t ecsJSONInstanceType) int64 { return int64(slices.Index(all, t) + 1) }
	page, info, eerr := ecsPage(p, all, idx, 1600, true)
	if eerr != nil {
		return nil, eerr
	}
	out := &ecsInstanceTypesResponse{NextToken: info.NextToken}
	out.InstanceTypes.InstanceType = append([]ecsJSONInstanceType{}, page...)
	return out, nil
}

type ecsJSONVSwitch struct {
	VSwitchID   string `json:"VSwitchId"`
	VSwitchName string `json:"VSwitchName"`
	VpcID       string `json:"VpcId"`
	ZoneID      string `json:"ZoneId"`
	CidrBlock   string `json:"CidrBlock"`
	Status      string `json:"Status"`
	IsDefault   bool   `json:"IsDefault"`
}

type ecsVSwitchesResponse struct {
	ecsHeader
	ecsPageInfo
	VSwitches struct {
		VSwitch []ecsJSONVSwitch `json:"VSwitch"`
	} `json:"VSwitches"`
}

// describeVSwitches filters by VSwitchId, VSwitchName, VpcId and ZoneId
// (exact), paged by PageNumber and PageSize (at most 50).
func (s *ECS) describeVSwitches(p ecsParams) (ecsResponse, *ecsError) {
	var all []ecsJSONVSwitch
	for _, v := range s.vsws {
		if p["VSwitchId"] != "" && p["VSwitchId"] != v.ID || p["VSwitchName"] != "" && p["VSwitchName"] != v.Name ||
			p["VpcId"] != "" && p["VpcId"] != v.VpcID || p["ZoneId"] != "" && p["ZoneId"] != v.ZoneID {
			continue
		}
		all = append(all, ecsJSONVSwitch{VSwitchID: v.ID, VSwitchName: v.Name, VpcID: v.VpcID, ZoneID: v.ZoneID, CidrBlock: v.CIDR, Status: "Available"})
	}
	page, info, eerr := ecsPage(p, all, nil, 50, false)
	if eerr != nil {
		return nil, eerr
	}
	out := &ecsVSwitchesResponse{ecsPageInfo: info}
	out.VSwitches.VSwitch = append([]ecsJSONVSwitch{}, page...)
	return out, nil
}

type ecsJSONSecurityGroup struct {
	SecurityGroupID   string `json:"SecurityGroupId"`
	SecurityGroupName string `json:"SecurityGroupName"`
	VpcID             string `json:"VpcId"`
	SecurityGroupType string `json:"SecurityGroupType"`
	Description       string `json:"Description"`
}

type ecsSecurityGroupsResponse struct {
	ecsHeader
	ecsPageInfo
	RegionID       string `json:"RegionId"`
	SecurityGroups struct {
		SecurityGroup []ecsJSONSecurityGroup `json:"SecurityGroup"`
	} `json:"SecurityGroups"`
}

// describeSecurityGroups filters by SecurityGroupId, SecurityGroupIds (a
// JSON array), SecurityGroupName and VpcId (exact), paged by PageNumber
// and PageSize (at most 50) or NextToken and MaxResults.
func (s *ECS) describeSecurityGroups(p ecsParams) (ecsResponse, *ecsError) {
	ids, eerr := ecsJSONList(p, "SecurityGroupIds", 100)
	if eerr != nil {
		return nil, eerr
	}
	var all []ecsJSONSecurityGroup
	for _, g := range s.groups {
		if p["SecurityGroupId"] != "" && p["SecurityGroupId"] != g.ID || len(ids) > 0 && !slices.Contains(ids, g.ID) ||
			p["SecurityGroupName"] != "" && p["SecurityGroupName"] != g.Name || p["VpcId"] != "" && p["VpcId"] != g.VpcID {
			continue
		}
		all = append(all, ecsJSONSecurityGroup{SecurityGroupID: g.ID, SecurityGroupName: g.Name, VpcID: g.VpcID, SecurityGroupType: "normal"})
	}
	idx := func(g ecsJSONSecurityGroup) int64 { return int64(slices.Index(all, g) + 1) }
	page, info, eerr := ecsPage(p, all, idx, 100, true)
	if eerr != nil {
		return nil, eerr
	}
	out := &ecsSecurityGroupsResponse{ecsPageInfo: info, RegionID: s.region}
	out.SecurityGroups.SecurityGroup = append([]ecsJSONSecurityGroup{}, page...)
	return out, nil
}

type ecsJSONImage struct {
	ImageID         string `json:"ImageId"`
	ImageName       string `json:"ImageName"`
	Status          string `json:"Status"`
	OSType          string `json:"OSType"`
	Architecture    string `json:"Architecture"`
	ImageOwnerAlias string `json:"ImageOwnerAlias"`
	Size            int    `json:"Size"`
}

type ecsImagesResponse struct {
	ecsHeader
	ecsPageInfo
	RegionID string `json:"RegionId"`
	Images   struct {
		Image []ecsJSONImage `json:"Image"`
	} `json:"Images"`
}

// describeImages filters by ImageId (comma-separated), ImageName (* as a
// wildcard) and Status (Available by default), paged by PageNumber and
// PageSize (at most 100).
func (s *ECS) describeImages(p ecsParams) (ecsResponse, *ecsError) {
	var ids []string
	if v := p["ImageId"]; v != "" {
		ids = strings.Split(v, ",")
	}
	if st := p["Status"]; st != "" && !slices.Contains(strings.Split(st, ","), "Available") {
		return &ecsImagesResponse{RegionID: s.region}, nil // every simulated image is Available
	}
	var all []ecsJSONImage
	for _, im := range s.images {
		if len(ids) > 0 && !slices.Contains(ids, im.ID) || p["ImageName"] != "" && !match(p["ImageName"], im.Name) {
			continue
		}
		owner := "system"
		if strings.HasPrefix(im.ID, "m-") {
			owner = "self"
		}
		all = append(all, ecsJSONImage{ImageID: im.ID, ImageName: im.Name, Status: "Available", OSType: "linux", Architecture: "x86_64", ImageOwnerAlias: owner, Size: 20})
	}
	page, info, eerr := ecsPage(p, all, nil, 100, false)
	if eerr != nil {
		return nil, eerr
	}
	out := &ecsImagesResponse{ecsPageInfo: info, RegionID: s.region}
	out.Images.Image = append([]ecsJSONImage{}, page...)
	return out, nil
}
