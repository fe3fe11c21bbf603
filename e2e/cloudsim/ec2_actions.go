package cloudsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

type actionFunc func(s *EC2, form url.Values, now time.Time) (response, *apiError)

// actions are the EC2 actions the simulator implements. They run with
// s.mu held.
var actions = map[string]actionFunc{
	"RunInstances":          (*EC2).runInstances,
	"DescribeInstances":     (*EC2).describeInstances,
	"TerminateInstances":    (*EC2).terminateInstances,
	"DescribeInstanceTypes": (*EC2).describeInstanceTypes,
	"DescribeRegions":       (*EC2).describeRegions,
}

const (
	maxClientToken = 64
	maxUserData    = 16 << 10 // EC2's limit on decoded user data
	maxTags        = 50
	timeFormat     = "2006-01-02T15:04:05.000Z"
)

// runRequest is a decoded RunInstances: what a ClientToken's
// fingerprint covers.
type runRequest struct {
	ImageID, InstanceType, SubnetID, KeyName string
	Min, Max                                 int
	GroupIDs, GroupNames                     []string
	Tags                                     map[string]string
	UserData                                 []byte
}

func (r runRequest) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %d %d %q %q\n", r.ImageID, r.InstanceType, r.SubnetID, r.KeyName, r.Min, r.Max, r.GroupIDs, r.GroupNames)
	for _, k := range slices.Sorted(maps.Keys(r.Tags)) {
		fmt.Fprintf(h, "%q=%q\n", k, r.Tags[k])
	}
	h.Write(r.UserData)
	return hex.EncodeToString(h.Sum(nil))
}

func decodeRun(form url.Values, types map[string]InstanceType) (runRequest, *apiError) {
	var r runRequest
	r.ImageID = form.Get("ImageId")
	switch {
	case r.ImageID == "":
		return r, newError("MissingParameter", "The request must contain the parameter ImageId")
	case !validID(r.ImageID, "ami-"):
		return r, newError("InvalidAMIID.Malformed", "Invalid id: %q (expecting \"ami-...\")", truncate(r.ImageID, 64))
	}
	r.InstanceType = form.Get("InstanceType")
	if r.InstanceType == "" {
		r.InstanceType = "m1.small" // EC2's default, which the simulator does not run
	}
	if _, ok := types[r.InstanceType]; !ok {
		return r, newError("InvalidParameterValue", "Invalid value '%s' for InstanceType.", truncate(r.InstanceType, 64))
	}
	var err error
	if r.Min, err = strconv.Atoi(form.Get("MinCount")); err != nil || r.Min < 1 {
		return r, newError("InvalidParameterValue", "MinCount must be a positive integer.")
	}
	if r.Max, err = strconv.Atoi(form.Get("MaxCount")); err != nil || r.Max < r.Min || r.Max > 100 {
		return r, newError("InvalidParameterValue", "MaxCount must be an integer from MinCount to 100.")
	}
	if r.SubnetID = form.Get("SubnetId"); r.SubnetID != "" && !validID(r.SubnetID, "subnet-") {
		return r, newError("InvalidSubnetID.Malformed", "Invalid subnet ID: %q", truncate(r.SubnetID, 64))
	}
	r.KeyName = form.Get("KeyName")
	var aerr *apiError
	if r.GroupIDs, aerr = list(form, "SecurityGroupId"); aerr != nil {
		return r, aerr
	}
	for _, g := range r.GroupIDs {
		if !validID(g, "sg-") {
			return r, newError("InvalidGroupId.Malformed", "Invalid security group ID: %q", truncate(g, 64))
		}
	}
	if r.GroupNames, aerr = list(form, "SecurityGroup"); aerr != nil {
		return r, aerr
	}
	if r.Tags, aerr = decodeTags(form); aerr != nil {
		return r, aerr
	}
	if ud := form.Get("UserData"); ud != "" {
		b, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return r, newError("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
		}
		if len(b) > maxUserData {
			return r, newError("InvalidParameterValue", "User data is limited to %d bytes.", maxUserData)
		}
		r.UserData = b
	}
	return r, nil
}

func decodeTags(form url.Values) (map[string]string, *apiError) {
	specs, aerr := members(form, "TagSpecification")
	if aerr != nil {
		return nil, aerr
	}
	tags := map[string]string{}
	for _, n := range specs {
		p := "TagSpecification." + strconv.Itoa(n)
		rt := form.Get(p + ".ResourceType")
		if rt == "" {
			return nil, newError("MissingParameter", "%s.ResourceType is missing.", p)
		}
		tn, aerr := members(form, p+".Tag")
		if aerr != nil {
			return nil, aerr
		}
		if rt != "instance" {
			continue // volumes and interfaces are not simulated
		}
		for _, m := range tn {
			tp := p + ".Tag." + strconv.Itoa(m)
			k, v := form.Get(tp+".Key"), form.Get(tp+".Value")
			switch {
			case k == "" || len(k) > 128 || len(v) > 256:
				return nil, newError("InvalidParameterValue", "Tag %s: a key of 1 to 128 characters and a value of at most 256.", tp)
			case strings.HasPrefix(strings.ToLower(k), "aws:"):
				return nil, newError("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use.")
			}
			if _, dup := tags[k]; dup {
				return nil, newError("InvalidParameterValue", "Duplicate tag key '%s' specified.", truncate(k, 128))
			}
			tags[k] = v
		}
	}
	if len(tags) > maxTags {
		return nil, newError("TagLimitExceeded", "The maximum number of tags for a resource is %d.", maxTags)
	}
	return tags, nil
}

// validID reports whether id is prefix followed by 8 or 17 lower-case
// hex digits, as EC2's resource ids are.
func validID(id, prefix string) bool {
	h, ok := strings.CutPrefix(id, prefix)
	if !ok || len(h) != 8 && len(h) != 17 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !('0' <= h[i] && h[i] <= '9' || 'a' <= h[i] && h[i] <= 'f') {
			return false
		}
	}
	return true
}

func (s *EC2) runInstances(form url.Values, now time.Time) (response, *apiError) {
	token := form.Get("ClientToken")
	if len(token) > maxClientToken || !printableASCII(token) {
		return nil, newError("InvalidParameterValue", "ClientToken must be at most %d ASCII characters.", maxClientToken)
	}
	req, aerr := decodeRun(form, s.types)
	if aerr == nil && s.images != nil && !s.images[req.ImageID] {
		aerr = newError("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", truncate(req.ImageID, 64))
	}
	if aerr != nil {
		return nil, aerr
	}
	fp := req.fingerprint()
	if res := s.tokens[token]; token != "" && res != nil {
		if res.fingerprint != fp {
			return nil, newError("IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
		}
		return s.reservationResponse(res), nil
	}
	count := req.Max
	if s.maxInstances > 0 {
		free := s.maxInstances - s.liveLocked()
		if free < req.Min {
			return nil, newError("InstanceLimitExceeded", "Your quota allows for %d more running instance(s). You requested at least %d.", max(free, 0), req.Min)
		}
		count = min(count, free)
	}
	res := &reservation{id: "r-" + randomHex(9)[:17], fingerprint: fp}
	res.groups = append(append(res.groups, req.GroupIDs...), req.GroupNames...)
	for range count {
		s.seq++
		in := &instance{seq: s.seq, Instance: Instance{
			ID:             "i-" + randomHex(9)[:17],
			ReservationID:  res.id,
			ClientToken:    token,
			ImageID:        req.ImageID,
			InstanceType:   req.InstanceType,
			SubnetID:       req.SubnetID,
			SecurityGroups: slices.Clone(res.groups),
			KeyName:        req.KeyName,
			Tags:           maps.Clone(req.Tags),
			UserData:       req.UserData,
			State:          StatePending,
			PrivateIP:      fmt.Sprintf("172.31.%d.%d", s.seq/250%250, s.seq%250+4),
			LaunchTime:     now.UTC(),
		}}
		res.instances = append(res.instances, in)
		s.launchLocked(in)
	}
	if token != "" {
		s.tokens[token] = res
	}
	return s.reservationResponse(res), nil
}

func (s *EC2) liveLocked() int {
	n := 0
	for _, in := range s.order {
		if in.State != StateTerminated {
			n++
		}
	}
	return n
}

func (s *EC2) reservationResponse(res *reservation) *runInstancesResponse {
	out := &runInstancesResponse{ReservationID: res.id, OwnerID: ownerID}
	for _, in := range res.instances {
		out.Instances = append(out.Instances, s.xmlInstanceOf(in))
	}
	return out
}

func (s *EC2) describeInstances(form url.Values, now time.Time) (response, *apiError) {
	ids, aerr := list(form, "InstanceId")
	if aerr != nil {
		return nil, aerr
	}
	fs, aerr := filters(form)
	if aerr != nil {
		return nil, aerr
	}
	for _, f := range fs {
		if !knownFilter(f.name) {
			return nil, newError("InvalidParameterValue", "The filter '%s' is invalid", truncate(f.name, 64))
		}
	}
	maxResults := 0
	if v := form.Get("MaxResults"); v != "" {
		if len(ids) > 0 {
			return nil, newError("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, newError("InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value greater than 5.", truncate(v, 16))
		}
		maxResults = n
	}
	var after int64
	if tok := form.Get("NextToken"); tok != "" {
		var ok bool
		if after, ok = decodeNextToken(tok); !ok {
			return nil, newError("InvalidParameterValue", "The token '%s' is invalid.", truncate(tok, 64))
		}
	}
	var candidates []*instance
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			if !validID(id, "i-") {
				return nil, newError("InvalidInstanceID.Malformed", "Invalid id: %q", truncate(id, 64))
			}
			if in, ok := s.instances[id]; ok {
				candidates = append(candidates, in)
			} else {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return nil, newError("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
		}
		slices.SortFunc(candidates, func(a, b *instance) int { return int(a.seq - b.seq) })
		candidates = slices.Compact(candidates)
	} else {
		candidates = s.order
	}
	out := &describeInstancesResponse{}
	byRes := map[string]int{} // reservation id → index in out.Reservations
	n := 0
	for _, in := range candidates {
		if in.seq <= after || !matchFilters(fs, in) {
			continue
		}
		if maxResults > 0 && n == maxResults {
			out.NextToken = encodeNextToken(in.seq - 1)
			break
		}
		n++
		i, ok := byRes[in.ReservationID]
		if !ok {
			i = len(out.Reservations)
			byRes[in.ReservationID] = i
			out.Reservations = append(out.Reservations, xmlReservation{ReservationID: in.ReservationID, OwnerID: ownerID})
		}
		out.Reservations[i].Instances = append(out.Reservations[i].Instances, s.xmlInstanceOf(in))
	}
	return out, nil
}

func encodeNextToken(after int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("after:" + strconv.FormatInt(after, 10)))
}

func decodeNextToken(tok string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	v, ok := strings.CutPrefix(string(b), "after:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

func knownFilter(name string) bool {
	switch name {
	case "tag-key", "instance-state-name", "instance-id", "instance-type", "image-id", "subnet-id", "reservation-id", "client-token", "key-name":
		return true
	}
	return strings.HasPrefix(name, "tag:") && len(name) > len("tag:")
}

func matchFilters(fs []filter, in *instance) bool {
	for _, f := range fs {
		if !matchFilter(f, in) {
			return false
		}
	}
	return true
}

func matchFilter(f filter, in *instance) bool {
	if k, ok := strings.CutPrefix(f.name, "tag:"); ok {
		v, has := in.Tags[k]
		return has && matchAny(f.values, v)
	}
	switch f.name {
	case "tag-key":
		for k := range in.Tags {
			if matchAny(f.values, k) {
				return true
			}
		}
		return false
	case "instance-state-name":
		return matchAny(f.values, in.State)
	case "instance-id":
		return matchAny(f.values, in.ID)
	case "instance-type":
		return matchAny(f.values, in.InstanceType)
	case "image-id":
		return matchAny(f.values, in.ImageID)
	case "subnet-id":
		return matchAny(f.values, in.SubnetID)
	case "reservation-id":
		return matchAny(f.values, in.ReservationID)
	case "client-token":
		return matchAny(f.values, in.ClientToken)
	case "key-name":
		return matchAny(f.values, in.KeyName)
	}
	return false
}

func (s *EC2) terminateInstances(form url.Values, now time.Time) (response, *apiError) {
	ids, aerr := list(form, "InstanceId")
	if aerr != nil {
		return nil, aerr
	}
	if len(ids) == 0 {
		return nil, newError("MissingParameter", "The request must contain the parameter InstanceId")
	}
	var missing []string
	for _, id := range ids {
		if !validID(id, "i-") {
			return nil, newError("InvalidInstanceID.Malformed", "Invalid id: %q", truncate(id, 64))
		}
		if s.instances[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, newError("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
	out := &terminateInstancesResponse{}
	for _, id := range ids {
		in := s.instances[id]
		prev := in.State
		if in.State == StatePending || in.State == StateRunning {
			in.State = StateShuttingDown
			in.cancel()
		}
		out.Instances = append(out.Instances, xmlStateChange{InstanceID: id, Current: xmlStateOf(in.State), Previous: xmlStateOf(prev)})
	}
	return out, nil
}

func (s *EC2) describeInstanceTypes(form url.Values, now time.Time) (response, *apiError) {
	names, aerr := list(form, "InstanceType")
	if aerr != nil {
		return nil, aerr
	}
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(s.types))
	}
	var unknown []string
	out := &describeInstanceTypesResponse{}
	for _, n := range names {
		t, ok := s.types[n]
		if !ok {
			unknown = append(unknown, truncate(n, 64))
			continue
		}
		out.Types = append(out.Types, xmlInstanceType{
			InstanceType: n,
			VCPU:         xmlVCPU{DefaultVCPUs: t.VCPUs, DefaultCores: max(t.VCPUs/2, 1), DefaultThreadsPerCore: min(t.VCPUs, 2)},
			Memory:       xmlMemory{SizeInMiB: t.MemoryMiB},
		})
	}
	if len(unknown) > 0 {
		return nil, newError("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(unknown, ", "))
	}
	return out, nil
}

func (s *EC2) describeRegions(form url.Values, now time.Time) (response, *apiError) {
	names, aerr := list(form, "RegionName")
	if aerr != nil {
		return nil, aerr
	}
	out := &describeRegionsResponse{}
	for _, n := range names {
		if n != s.region {
			return nil, newError("InvalidParameterValue", "Invalid region: %s", truncate(n, 64))
		}
	}
	out.Regions = []xmlRegion{{RegionName: s.region, Endpoint: "ec2." + s.region + ".amazonaws.com", OptInStatus: "opt-in-not-required"}}
	return out, nil
}

// The XML answers, with EC2's element names.

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

func xmlStateOf(state string) xmlState { return xmlState{Code: stateCodes[state], Name: state} }

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName,omitempty"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xmlInstance struct {
	InstanceID     string       `xml:"instanceId"`
	ImageID        string       `xml:"imageId"`
	State          xmlState     `xml:"instanceState"`
	PrivateDNSName string       `xml:"privateDnsName"`
	DNSName        string       `xml:"dnsName"`
	KeyName        string       `xml:"keyName,omitempty"`
	AMILaunchIndex int          `xml:"amiLaunchIndex"`
	InstanceType   string       `xml:"instanceType"`
	LaunchTime     string       `xml:"launchTime"`
	Placement      xmlPlacement `xml:"placement"`
	SubnetID       string       `xml:"subnetId,omitempty"`
	PrivateIP      string       `xml:"privateIpAddress,omitempty"`
	Groups         []xmlGroup   `xml:"groupSet>item"`
	Architecture   string       `xml:"architecture"`
	ClientToken    string       `xml:"clientToken,omitempty"`
	Tags           []xmlTag     `xml:"tagSet>item,omitempty"`
}

func (s *EC2) xmlInstanceOf(in *instance) xmlInstance {
	x := xmlInstance{
		InstanceID:     in.ID,
		ImageID:        in.ImageID,
		State:          xmlStateOf(in.State),
		KeyName:        in.KeyName,
		InstanceType:   in.InstanceType,
		LaunchTime:     in.LaunchTime.Format(timeFormat),
		Placement:      xmlPlacement{AvailabilityZone: s.region + "a", Tenancy: "default"},
		SubnetID:       in.SubnetID,
		Architecture:   "x86_64",
		ClientToken:    in.ClientToken,
		PrivateIP:      in.PrivateIP,
		PrivateDNSName: "ip-" + strings.ReplaceAll(in.PrivateIP, ".", "-") + ".ec2.internal",
	}
	if in.State == StateTerminated {
		x.PrivateIP, x.PrivateDNSName = "", ""
	}
	for _, g := range in.SecurityGroups {
		if strings.HasPrefix(g, "sg-") {
			x.Groups = append(x.Groups, xmlGroup{GroupID: g})
		} else {
			x.Groups = append(x.Groups, xmlGroup{GroupID: "sg-" + hex.EncodeToString([]byte(g))[:min(8, 2*len(g))], GroupName: g})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(in.Tags)) {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: in.Tags[k]})
	}
	return x
}

type runInstancesResponse struct {
	XMLName xml.Name `xml:"RunInstancesResponse"`
	respHeader
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	XMLName xml.Name `xml:"DescribeInstancesResponse"`
	respHeader
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type xmlStateChange struct {
	InstanceID string   `xml:"instanceId"`
	Current    xmlState `xml:"currentState"`
	Previous   xmlState `xml:"previousState"`
}

type terminateInstancesResponse struct {
	XMLName xml.Name `xml:"TerminateInstancesResponse"`
	respHeader
	Instances []xmlStateChange `xml:"instancesSet>item"`
}

type xmlVCPU struct {
	DefaultVCPUs          int `xml:"defaultVCpus"`
	DefaultCores          int `xml:"defaultCores"`
	DefaultThreadsPerCore int `xml:"defaultThreadsPerCore"`
}

type xmlMemory struct {
	SizeInMiB int64 `xml:"sizeInMiB"`
}

type xmlInstanceType struct {
	InstanceType string    `xml:"instanceType"`
	VCPU         xmlVCPU   `xml:"vCpuInfo"`
	Memory       xmlMemory `xml:"memoryInfo"`
}

type describeInstanceTypesResponse struct {
	XMLName xml.Name `xml:"DescribeInstanceTypesResponse"`
	respHeader
	Types []xmlInstanceType `xml:"instanceTypeSet>item"`
}

type xmlRegion struct {
	RegionName  string `xml:"regionName"`
	Endpoint    string `xml:"regionEndpoint"`
	OptInStatus string `xml:"optInStatus"`
}

type describeRegionsResponse struct {
	XMLName xml.Name `xml:"DescribeRegionsResponse"`
	respHeader
	Regions []xmlRegion `xml:"regionInfo>item"`
}
