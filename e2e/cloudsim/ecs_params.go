package cloudsim

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Decoding of ECS's RPC parameters: integers, booleans, Name.N lists,
// JSON-array lists, Tag.N.Key/Tag.N.Value and the two ways of paging.

// ecsSpec is one action: its function, the API versions it takes, and
// whether RegionId must name the simulator's region.
type ecsSpec struct {
	fn       func(s *ECS, p ecsParams) (ecsResponse, *ecsError)
	versions []string
	regional bool
}

// ecsActions are the actions the simulator implements. They run with
// s.mu held.
var ecsActions = map[string]ecsSpec{
	"RunInstances":           {(*ECS).runInstances, []string{ECSVersion}, true},
	"DescribeInstances":      {(*ECS).describeInstances, []string{ECSVersion}, true},
	"DeleteInstance":         {(*ECS).deleteInstance, []string{ECSVersion}, false},
	"DeleteInstances":        {(*ECS).deleteInstances, []string{ECSVersion}, true},
	"DescribeRegions":        {(*ECS).describeRegions, []string{ECSVersion}, false},
	"DescribeInstanceTypes":  {(*ECS).describeInstanceTypes, []string{ECSVersion}, false},
	"DescribeVSwitches":      {(*ECS).describeVSwitches, []string{VPCVersion, ECSVersion}, true},
	"DescribeSecurityGroups": {(*ECS).describeSecurityGroups, []string{ECSVersion}, true},
	"DescribeImages":         {(*ECS).describeImages, []string{ECSVersion}, true},
}

// ecsLookup finds a request's action and checks its Version and Format.
func ecsLookup(p ecsParams) (ecsSpec, *ecsError) {
	action := p["Action"]
	if action == "" {
		return ecsSpec{}, ecsMissing("Action")
	}
	spec, ok := ecsActions[action]
	if !ok {
		return ecsSpec{}, ecsErr("InvalidAction.NotFound", "Specified api %q is not found, please check your url and method.", truncate(action, 64))
	}
	switch v := p["Version"]; {
	case v == "":
		return ecsSpec{}, ecsMissing("Version")
	case !slices.Contains(spec.versions, v):
		return ecsSpec{}, ecsErr("InvalidVersion", "Specified parameter Version %q is not valid for %s.", truncate(v, 32), action)
	}
	if f := p["Format"]; f != "" && !strings.EqualFold(f, "JSON") {
		return ecsSpec{}, ecsErr("InvalidParameter", "The simulator answers Format=JSON only.")
	}
	return spec, nil
}

// ecsInt is an integer parameter from lo to hi; def when absent.
func ecsInt(p ecsParams, name string, def, lo, hi int) (int, *ecsError) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, ecsErr("InvalidParameter", "The specified parameter %q is not valid: want an integer from %d to %d.", name, lo, hi)
	}
	return n, nil
}

// ecsBool is a boolean parameter ("true" or "false"); false when absent.
func ecsBool(p ecsParams, name string) (bool, *ecsError) {
	switch strings.ToLower(p[name]) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, ecsInvalid("InvalidParameter", name, p[name])
}

// ecsIndex parses the N of Name.N: 1 to hi, no sign, no leading zero.
func ecsIndex(num string, hi int) (int, bool) {
	if num == "" || num[0] < '1' || num[0] > '9' || len(num) > 4 {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil && n <= hi
}

// ecsRepeated is the list prefix.1, prefix.2, ... in order of N.
func ecsRepeated(p ecsParams, prefix string, hi int) ([]string, *ecsError) {
	type item struct {
		n int
		v string
	}
	var items []item
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		n, ok := ecsIndex(rest, hi)
		if !ok {
			return nil, ecsErr("InvalidParameter", "The parameter %q is not valid: %s.N takes N from 1 to %d.", truncate(k, 64), prefix, hi)
		}
		items = append(items, item{n, v})
	}
	slices.SortFunc(items, func(a, b item) int { return a.n - b.n })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, nil
}

// ecsJSONList is a parameter that holds a JSON array of strings (as
// InstanceIds does), at most hi of them.
func ecsJSONList(p ecsParams, name string, hi int) ([]string, *ecsError) {
	v, ok := p[name]
	if !ok {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil || len(out) > hi {
		return nil, ecsErr("Invalid"+name+".Malformed", "The specified parameter %q is not valid: want a JSON array of at most %d strings.", name, hi)
	}
	return out, nil
}

// ecsTag is one Tag.N.
type ecsTag struct{ key, value string }

// ecsTags decodes Tag.N.Key and Tag.N.Value, in order of N (at most
// 20). A value without a key is refused.
func ecsTags(p ecsParams) ([]ecsTag, *ecsError) {
	byN := map[int]*ecsTag{}
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, "Tag.")
		if !ok {
			continue
		}
		num, field, _ := strings.Cut(rest, ".")
		n, ok := ecsIndex(num, 20)
		if !ok || field != "Key" && field != "Value" {
			return nil, ecsErr("InvalidTagCount", "The parameter %q is not valid: Tag.N.Key and Tag.N.Value take N from 1 to 20.", truncate(k, 64))
		}
		t := byN[n]
		if t == nil {
			t = &ecsTag{}
			byN[n] = t
		}
		if field == "Key" {
			t.key = v
		} else {
			t.value = v
		}
	}
	ns := make([]int, 0, len(byN))
	for n := range byN {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]ecsTag, 0, len(ns))
	for _, n := range ns {
		if byN[n].key == "" {
			return nil, ecsErr("InvalidTagKey.Malformed", "The specified Tag.%d.Key is empty.", n)
		}
		out = append(out, *byN[n])
	}
	return out, nil
}

// ecsPageInfo is what a paged answer says of its page.
type ecsPageInfo struct {
	TotalCount int    `json:"TotalCount"`
	PageNumber int    `json:"PageNumber,omitempty"`
	PageSize   int    `json:"PageSize,omitempty"`
	NextToken  string `json:"NextToken"`
}

// ecsPage picks the page p asks for of items, which are in increasing
// order of key. With tokens, NextToken or MaxResults page by token (the
// key of the last item answered); otherwise PageNumber and PageSize do.
func ecsPage[T any](p ecsParams, items []T, key func(T) int64, maxSize int, tokens bool) ([]T, ecsPageInfo, *ecsError) {
	const defSize = 10
	info := ecsPageInfo{TotalCount: len(items)}
	_, hasToken := p["NextToken"]
	_, hasMax := p["MaxResults"]
	if tokens && (hasToken || hasMax) {
		if _, ok := p["PageNumber"]; ok {
			return nil, info, ecsErr("InvalidParameter", "NextToken and MaxResults cannot be used with PageNumber.")
		}
		size, eerr := ecsInt(p, "MaxResults", defSize, 1, maxSize)
		if eerr != nil {
			return nil, info, eerr
		}
		var after int64
		if tok := p["NextToken"]; tok != "" {
			var ok bool
			if after, ok = decodeNextToken(tok); !ok {
				return nil, info, ecsErr("InvalidNextToken.Malformed", "The specified NextToken %q is not valid.", truncate(tok, 64))
			}
		}
		start := len(items)
		for i, it := range items {
			if key(it) > after {
				start = i
				break
			}
		}
		end := min(start+size, len(items))
		if end < len(items) {
			info.NextToken = encodeNextToken(key(items[end-1]))
		}
		info.PageSize = size
		return items[start:end], info, nil
	}
	number, eerr := ecsInt(p, "PageNumber", 1, 1, 1<<20)
	if eerr != nil {
		return nil, info, eerr
	}
	size, eerr := ecsInt(p, "PageSize", defSize, 1, maxSize)
	if eerr != nil {
		return nil, info, eerr
	}
	info.PageNumber, info.PageSize = number, size
	start := min((number-1)*size, len(items))
	return items[start:min(start+size, len(items))], info, nil
}
