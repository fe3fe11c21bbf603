package installer

import (
	"fmt"
	"hash/fnv"
	"net/url"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Join is what a new machine needs to install the agent and enroll it with
// a hub: where to fetch install.sh and the binary, the gateways to connect
// to, and its single-use join token. The same Join always renders the same
// document, so a create retried with it carries identical user data.
type Join struct {
	// HubURLs are the hubs' HTTP base URLs (http://HOST:7480), tried in
	// turn (starting at one picked by MachineID) until one serves
	// /install.sh; install.sh gets them all for the binary's download.
	// At least one is required.
	HubURLs []string
	// Gateways are the hubs' agent gateway addresses (HOST:PORT); empty
	// leaves the list the serving hub embeds in install.sh.
	Gateways []string
	// JoinToken is the machine's single-use join token (WJ1.…). Required.
	JoinToken string
	// MachineID is Wharf's id of the machine, recorded on the host and
	// passed to the agent ("" = none).
	MachineID string
	// Pool is the pool the agent joins ("" = the token's pool).
	Pool string
	// Name is the agent's name ("" = the host name).
	Name string
	// Rounds is how many times every hub URL is tried, 10 s apart, before
	// the install gives up (0 = 30, five minutes for a hub that is still
	// unreachable while the machine boots).
	Rounds int
}

// maxRoundsDefault is the number of rounds when Join.Rounds is 0.
const maxRoundsDefault = 30

// CloudConfig renders the #cloud-config document whose runcmd installs and
// enrolls the agent: it downloads /install.sh from the first hub that
// answers and runs it with the join token, machine id, pool and gateways.
func CloudConfig(j Join) ([]byte, error) {
	cmd, err := InstallCommand(j)
	if err != nil {
		return nil, err
	}
	// One runcmd entry as an argv (cloud-init execs it without a shell of
	// its own), the YAML quoting left to the encoder.
	doc := struct {
		RunCmd [][]string `json:"runcmd"`
	}{RunCmd: [][]string{{"sh", "-c", cmd}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode cloud-config: %w", err)
	}
	return append([]byte("#cloud-config\n"), b...), nil
}

// InstallCommand is the install CloudConfig runs, as one POSIX shell
// command line (for a host reached over SSH). Every value is quoted for the
// shell; values install.sh would refuse are refused here already.
func InstallCommand(j Join) (string, error) {
	if err := j.validate(); err != nil {
		return "", err
	}
	rounds := j.Rounds
	if rounds <= 0 {
		rounds = maxRoundsDefault
	}
	// Machines start at different hubs (by their machine id), so that a
	// burst of installs is spread over the nodes and one node's death
	// meets only its share of them.
	var urls []string
	start := 0
	if j.MachineID != "" {
		h := fnv.New32a()
		h.Write([]byte(j.MachineID))
		start = int(h.Sum32() % uint32(len(j.HubURLs)))
	}
	for i := range j.HubURLs {
		urls = append(urls, shellQuote(strings.TrimRight(j.HubURLs[(start+i)%len(j.HubURLs)], "/")))
	}
	args := []string{"--token", shellQuote(j.JoinToken)}
	if j.MachineID != "" {
		args = append(args, "--machine-id", shellQuote(j.MachineID))
	}
	if j.Pool != "" {
		args = append(args, "--pool", shellQuote(j.Pool))
	}
	if j.Name != "" {
		args = append(args, "--name", shellQuote(j.Name))
	}
	for _, g := range j.Gateways {
		args = append(args, "--hub", shellQuote(g))
	}
	// install.sh goes to a file first: a download cut short must not run
	// half a script.
	var b strings.Builder
	b.WriteString(`f=$(mktemp) && trap 'rm -f "$f"' EXIT && r=0 && `)
	b.WriteString(`while [ "$r" -lt ` + strconv.Itoa(rounds) + ` ]; do `)
	b.WriteString(`for u in ` + strings.Join(urls, " ") + `; do `)
	// install.sh downloads the binary from the hub that served it or,
	// when that one fails or stalls, from the others; an install that
	// fails all the same sends the loop on to the next node (or round).
	b.WriteString(`if curl -sSfL --connect-timeout 5 --max-time 20 -o "$f" "$u/install.sh" && `)
	b.WriteString(`sh "$f" --hub-url "$u"`)
	for _, u := range urls {
		b.WriteString(" --hub-url " + u)
	}
	// Failures go to the console with the time: where a slow boot spent it.
	b.WriteString(" " + strings.Join(args, " ") + `; then exit 0; fi; `)
	b.WriteString(`echo "wharf: $(date -u +%H:%M:%S) install from $u failed" >&2; done; `)
	b.WriteString(`r=$((r + 1)); [ "$r" -ge ` + strconv.Itoa(rounds) + ` ] || sleep 10; done; `)
	b.WriteString(`echo "wharf: no hub served /install.sh" >&2; exit 1`)
	return b.String(), nil
}

// validate refuses what install.sh would refuse, naming the field but never
// quoting the join token.
func (j Join) validate() error {
	if len(j.HubURLs) == 0 {
		return fmt.Errorf("install: at least one hub URL is required")
	}
	for _, s := range j.HubURLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !safeValue(s) {
			return fmt.Errorf("install: hub URL %q: want http(s)://HOST:PORT", s)
		}
	}
	if !strings.HasPrefix(j.JoinToken, "WJ1.") || !safeValue(j.JoinToken) {
		return fmt.Errorf("install: the join token is not a Wharf join token (WJ1.…)")
	}
	for _, f := range []struct{ name, v string }{{"machine id", j.MachineID}, {"pool", j.Pool}, {"name", j.Name}} {
		if f.v != "" && !safeValue(f.v) {
			return fmt.Errorf("install: %s %q: only letters, digits and . _ : , = / @ + - are allowed", f.name, f.v)
		}
	}
	for _, g := range j.Gateways {
		if !safeValue(g) || strings.Contains(g, ",") {
			return fmt.Errorf("install: gateway %q: want HOST:PORT", g)
		}
	}
	return nil
}

// safeValue mirrors install.sh's check: the agent's command line is built
// by word splitting there, so values keep to characters that need no
// quoting, and none starts with "-".
func safeValue(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("._:,=/@+-_", r):
		default:
			return false
		}
	}
	return true
}

// shellQuote quotes s as one POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
