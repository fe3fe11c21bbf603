package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// commentPrefix starts the comment of every iptables rule of any lab:
// wharf-netlab:<id>:<pid>:<tag>.
const commentPrefix = "wharf-netlab:"

// ipt drives one iptables binary (filter table only), in the root
// namespace or, with ns set, in that network namespace.
type ipt struct {
	bin string
	ns  string
}

// in returns p working inside network namespace ns.
func (p ipt) in(ns string) ipt { return ipt{bin: p.bin, ns: ns} }

// run runs the binary with args.
func (p ipt) run(args ...string) (string, error) {
	if p.ns != "" {
		return run("ip", append([]string{"netns", "exec", p.ns, p.bin}, args...)...)
	}
	return run(p.bin, args...)
}

// detectIPTables picks the iptables binary whose rule set the kernel uses
// for this machine's forwarding: the one given, else "iptables", unless
// only iptables-legacy holds Docker's chains or a DROP forward policy.
func detectIPTables(override string) (ipt, error) {
	if override != "" {
		if _, err := run(override, "-w", "-S", "FORWARD"); err != nil {
			return ipt{}, fmt.Errorf("iptables binary %s: %w", override, err)
		}
		return ipt{bin: override}, nil
	}
	def, defErr := run("iptables", "-w", "-S", "FORWARD")
	// Only look at the legacy rule set when the kernel has legacy tables:
	// listing them with iptables-legacy would register them.
	if legacyTables() {
		leg, err := run("iptables-legacy", "-w", "-S", "FORWARD")
		if err == nil && busy(leg) && (defErr != nil || !busy(def)) {
			return ipt{bin: "iptables-legacy"}, nil
		}
	}
	if defErr != nil {
		return ipt{}, fmt.Errorf("iptables: %w", defErr)
	}
	return ipt{bin: "iptables"}, nil
}

// legacyTables tells whether the kernel has a legacy (x_tables) filter
// table and iptables-legacy is installed.
func legacyTables() bool {
	b, err := os.ReadFile("/proc/net/ip_tables_names")
	if err != nil || !strings.Contains(string(b), "filter") {
		return false
	}
	_, err = exec.LookPath("iptables-legacy")
	return err == nil
}

// busy tells whether `iptables -S FORWARD` output shows a DROP policy or
// Docker's chains.
func busy(s string) bool {
	return strings.Contains(s, "-P FORWARD DROP") || strings.Contains(s, "DOCKER")
}

// chainExists tells whether the filter table has the chain.
func (p ipt) chainExists(chain string) bool {
	_, err := p.run("-w", "-S", chain)
	return err == nil
}

// rule is one iptables rule: its chain and its match/target arguments
// (without -A/-I/-D and chain).
type rule struct {
	chain string
	args  []string
}

// insert inserts the rule at the top of its chain.
func (p ipt) insert(r rule) error {
	args := append([]string{"-w", "-I", r.chain, "1"}, r.args...)
	if _, err := p.run(args...); err != nil {
		return fmt.Errorf("insert iptables rule: %w", err)
	}
	return nil
}

// delete deletes the rule.
func (p ipt) delete(r rule) error {
	args := append([]string{"-w", "-D", r.chain}, r.args...)
	if _, err := p.run(args...); err != nil {
		return fmt.Errorf("delete iptables rule: %w", err)
	}
	return nil
}

// taggedRule is a rule found in the rule set with a lab comment.
type taggedRule struct {
	rule
	id, pid, tag string
}

// list returns every rule of the filter table that carries a lab comment.
func (p ipt) list() ([]taggedRule, error) {
	out, err := p.run("-w", "-S")
	if err != nil {
		return nil, fmt.Errorf("list iptables rules: %w", err)
	}
	var rules []taggedRule
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "-A" {
			continue
		}
		var comment string
		for i := 2; i+1 < len(f); i++ {
			if f[i] == "--comment" {
				comment = strings.Trim(f[i+1], `"`)
			}
		}
		if !strings.HasPrefix(comment, commentPrefix) {
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(comment, commentPrefix), ":", 3)
		if len(parts) != 3 {
			continue
		}
		args := make([]string, 0, len(f)-2)
		for _, a := range f[2:] {
			args = append(args, strings.Trim(a, `"`))
		}
		rules = append(rules, taggedRule{
			rule: rule{chain: f[1], args: args},
			id:   parts[0], pid: parts[1], tag: parts[2],
		})
	}
	return rules, nil
}
