package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// Constraint operators.
const (
	OpEqual    = "="
	OpNotEqual = "!="
	OpIn       = "in"
	OpNotIn    = "not_in"
	OpExists   = "exists"
)

// Constraint restricts the hosts an app may run on. Attr is "pool",
// "datacenter", "zone", "name" (the host's name) or "label.KEY".
//
// A host that lacks the attribute (no such label, or an empty zone)
// fails "=", "in" and "exists" and passes "!=" and "not_in": a host
// without label gpu is not gpu=true.
type Constraint struct {
	Attr   string
	Op     string
	Values []string // one for = and !=, at least one for in and not_in, none for exists
}

// ParseConstraint parses the text form of a constraint, as the API and
// wharf.yaml accept it:
//
//	zone=b               label.disk!=hdd
//	datacenter in dc1,dc2   (also "in (dc1, dc2)" or "in [dc1,dc2]")
//	name not_in web-1,web-2
//	label.gpu exists
//
// Spaces around operators are allowed; "==" is read as "=".
func ParseConstraint(s string) (Constraint, error) {
	text := strings.TrimSpace(s)
	fail := func(format string, args ...any) (Constraint, error) {
		return Constraint{}, fmt.Errorf("constraint %q: %s", s, fmt.Sprintf(format, args...))
	}
	if text == "" {
		return fail("empty")
	}
	var c Constraint
	if f := strings.Fields(text); len(f) >= 2 && (f[1] == OpIn || f[1] == OpNotIn || f[1] == OpExists) {
		c.Attr, c.Op = f[0], f[1]
		rest := strings.TrimSpace(text[len(f[0]):])
		rest = strings.TrimSpace(rest[len(f[1]):])
		if c.Op == OpExists {
			if rest != "" {
				return fail("exists takes no value, got %q", rest)
			}
		} else {
			if len(rest) >= 2 && (rest[0] == '(' && rest[len(rest)-1] == ')' || rest[0] == '[' && rest[len(rest)-1] == ']') {
				rest = rest[1 : len(rest)-1]
			}
			if strings.TrimSpace(rest) == "" {
				return fail("%s needs a comma-separated list of values", c.Op)
			}
			for v := range strings.SplitSeq(rest, ",") {
				c.Values = append(c.Values, strings.TrimSpace(v))
			}
		}
	} else {
		i := strings.IndexAny(text, "!=")
		if i < 0 {
			return fail("no operator: want ATTR=VALUE, ATTR!=VALUE, ATTR in A,B, ATTR not_in A,B or ATTR exists")
		}
		c.Attr = strings.TrimSpace(text[:i])
		rest := text[i:]
		switch {
		case strings.HasPrefix(rest, "!="):
			c.Op, rest = OpNotEqual, rest[2:]
		case strings.HasPrefix(rest, "=="):
			c.Op, rest = OpEqual, rest[2:]
		case strings.HasPrefix(rest, "="):
			c.Op, rest = OpEqual, rest[1:]
		default:
			return fail("unknown operator at %q", rest)
		}
		c.Values = []string{strings.TrimSpace(rest)}
	}
	if err := c.Validate(); err != nil {
		return Constraint{}, fmt.Errorf("constraint %q: %w", s, err)
	}
	return c, nil
}

// ParseConstraints parses each of list with ParseConstraint.
func ParseConstraints(list []string) ([]Constraint, error) {
	out := make([]Constraint, 0, len(list))
	for _, s := range list {
		c, err := ParseConstraint(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Validate reports what is wrong with c.
func (c *Constraint) Validate() error {
	switch c.Attr {
	case "pool", "datacenter", "zone", "name":
	default:
		key, ok := strings.CutPrefix(c.Attr, "label.")
		if !ok {
			return fmt.Errorf("unknown attribute %q: want pool, datacenter, zone, name or label.KEY", c.Attr)
		}
		if key == "" || strings.ContainsAny(key, " \t\r\n=!,") {
			return fmt.Errorf("bad label key %q", key)
		}
	}
	switch c.Op {
	case OpEqual, OpNotEqual:
		if len(c.Values) != 1 || c.Values[0] == "" {
			return fmt.Errorf("%s %s needs one non-empty value (use %q to test presence)", c.Attr, c.Op, OpExists)
		}
	case OpIn, OpNotIn:
		if len(c.Values) == 0 {
			return fmt.Errorf("%s %s needs at least one value", c.Attr, c.Op)
		}
		if slices.Contains(c.Values, "") {
			return fmt.Errorf("%s %s: empty value in list", c.Attr, c.Op)
		}
	case OpExists:
		if len(c.Values) != 0 {
			return fmt.Errorf("%s exists takes no value", c.Attr)
		}
	default:
		return fmt.Errorf("unknown operator %q: want =, !=, in, not_in or exists", c.Op)
	}
	return nil
}

// String returns the text form that ParseConstraint reads back.
func (c Constraint) String() string {
	switch c.Op {
	case OpEqual, OpNotEqual:
		v := ""
		if len(c.Values) > 0 {
			v = c.Values[0]
		}
		return c.Attr + c.Op + v
	case OpExists:
		return c.Attr + " exists"
	}
	return c.Attr + " " + c.Op + " " + strings.Join(c.Values, ",")
}

// Attribute kinds of a compiled constraint.
const (
	attrPool = iota
	attrDatacenter
	attrZone
	attrName
	attrLabel
)

// matcher is a Constraint compiled for the hot loop: no string parsing
// per host.
type matcher struct {
	kind  int
	label string
	src   *Constraint
}

func compile(c *Constraint) matcher {
	m := matcher{src: c}
	switch c.Attr {
	case "pool":
		m.kind = attrPool
	case "datacenter":
		m.kind = attrDatacenter
	case "zone":
		m.kind = attrZone
	case "name":
		m.kind = attrName
	default:
		m.kind = attrLabel
		m.label = strings.TrimPrefix(c.Attr, "label.")
	}
	return m
}

// cellLevel reports whether the constraint depends only on what all
// hosts of a placement cell (pool, datacenter, zone) share.
func (m *matcher) cellLevel() bool { return m.kind <= attrZone }

// matchHost reports whether h passes the constraint.
func (m *matcher) matchHost(h *Host) bool {
	switch m.kind {
	case attrPool:
		return m.matchValue(h.Pool, h.Pool != "")
	case attrDatacenter:
		return m.matchValue(h.Datacenter, h.Datacenter != "")
	case attrZone:
		return m.matchValue(h.Zone, h.Zone != "")
	case attrName:
		return m.matchValue(h.Name, h.Name != "")
	}
	v, ok := h.Labels[m.label]
	return m.matchValue(v, ok)
}

func (m *matcher) matchValue(v string, present bool) bool {
	vals := m.src.Values
	switch m.src.Op {
	case OpEqual:
		return present && v == vals[0]
	case OpNotEqual:
		return !present || v != vals[0]
	case OpIn:
		return present && slices.Contains(vals, v)
	case OpNotIn:
		return !present || !slices.Contains(vals, v)
	case OpExists:
		return present
	}
	return false
}

// matchCell evaluates a cell-level constraint on a cell's attributes.
func (m *matcher) matchCell(pool, dc, zone string) bool {
	switch m.kind {
	case attrPool:
		return m.matchValue(pool, pool != "")
	case attrDatacenter:
		return m.matchValue(dc, dc != "")
	case attrZone:
		return m.matchValue(zone, zone != "")
	}
	return true
}
