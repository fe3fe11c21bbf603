package ssh

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"

	"github.com/wharf-platform/wharf/providers"
)

// The scripts below run with sh on the host. They find the install root
// the way install.sh does ($WHARF_ROOT, default /), so a host set up with
// another root (a test's sshd sets WHARF_ROOT for its sessions) is read
// where it was installed.
const dataDir = `d="${WHARF_ROOT:-}/var/lib/wharf-agent"` + "\n"

// exitTaken is installAndReport's exit status for a host that is already taken.
const exitTaken = 3

// stateScript prints what the host holds, one key=value a line:
// installed=<machine id>, tag.<key>=<value>, taken=1.
const stateScript = dataDir + `if [ -e "$d" ]; then echo taken=1; fi
if [ -f "$d/machine-id" ]; then echo "installed=$(cat "$d/machine-id")"; fi
if [ -f "$d/wharf-machine.tags" ]; then sed 's/^/tag./' "$d/wharf-machine.tags"; fi
`

// uninstallScript removes a wharf machine: the installed uninstaller
// (it stops the agent and removes its binary, unit and data dir), then
// whatever a failed install left. A host with no tags file is not one of
// ours (or no longer) and is left alone.
const uninstallScript = dataDir + `[ -f "$d/wharf-machine.tags" ] || exit 0
u="${WHARF_ROOT:-}/usr/local/bin/wharf-agent-uninstall"
if [ -x "$u" ]; then WHARF_UNINSTALL_ROOT="${WHARF_ROOT:-}" "$u" >&2; fi
rm -rf "$d"
`

// installAndReport is Create's one script on the chosen host: unless the
// machine is installed there already, take the host (mkdir of the data dir
// is atomic, so of two creates only one takes a host; exit exitTaken when
// it is taken) or, when held, check that it is still this machine's; write
// the tags (before the install, so that List and Create see a host being
// installed); run the install (its output goes to stderr) and record the
// machine id if the install did not; then print the host's state.
func installAndReport(machineID string, tags map[string]string, install string, held bool) string {
	id := shellQuote(machineID)
	var b strings.Builder
	b.WriteString(dataDir)
	b.WriteString(`if [ ! -f "$d/machine-id" ] || [ "$(cat "$d/machine-id")" != ` + id + ` ]; then` + "\n")
	if held {
		fmt.Fprintf(&b, "grep -qx %s \"$d/wharf-machine.tags\" 2>/dev/null || exit %d\n", shellQuote(providers.TagMachine+"="+machineID), exitTaken)
	} else {
		b.WriteString(`mkdir -p "$(dirname "$d")"` + "\n")
		fmt.Fprintf(&b, "mkdir \"$d\" 2>/dev/null || exit %d\n", exitTaken)
	}
	b.WriteString(`umask 022` + "\n")
	b.WriteString(`printf '%s\n'`)
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(" " + shellQuote(k+"="+tags[k]))
	}
	b.WriteString(` >"$d/wharf-machine.tags.tmp"` + "\n")
	b.WriteString(`mv "$d/wharf-machine.tags.tmp" "$d/wharf-machine.tags"` + "\n")
	b.WriteString(`sh -c ` + shellQuote(install) + ` >&2 || exit $?` + "\n")
	b.WriteString(`[ -f "$d/machine-id" ] || echo ` + id + ` >"$d/machine-id"` + "\n")
	b.WriteString("fi\n")
	b.WriteString(stateScript)
	return b.String()
}

// hostState is what one host holds.
type hostState struct {
	taken     bool              // the data dir exists: never install there unless it holds our machine
	installed string            // machine-id: the machine installed there ("" = none)
	tags      map[string]string // wharf-machine.tags
}

// holds reports whether the host is (being) installed as machineID.
func (s hostState) holds(machineID string) bool {
	return s.tags[providers.TagMachine] == machineID || s.installed == machineID
}

// machine is the host as a providers.Machine.
func (s hostState) machine(host string) providers.Machine {
	m := providers.Machine{ProviderID: host, MachineID: s.tags[providers.TagMachine], State: providers.StateGone}
	if m.MachineID == "" {
		m.MachineID = s.installed
	}
	if len(s.tags) > 0 {
		m.Tags = s.tags
		m.State = providers.StatePending
	}
	if s.installed != "" {
		m.State = providers.StateRunning
	}
	if h, _, err := net.SplitHostPort(host); err == nil && m.State != providers.StateGone {
		m.Addresses = []string{h}
	}
	return m
}

// readState runs stateScript and parses its answer.
func (p *Provider) readState(ctx context.Context, c *ssh.Client) (hostState, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.CommandTimeout)
	defer cancel()
	out, err := p.output(ctx, c, stateScript)
	if err != nil {
		return hostState{}, fmt.Errorf("read marker: %w", err)
	}
	return parseState(out), nil
}

// parseState reads stateScript's answer.
func parseState(out string) hostState {
	var st hostState
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		switch {
		case !ok:
		case k == "taken":
			st.taken = true
		case k == "installed":
			st.installed = v
		case strings.HasPrefix(k, "tag."):
			if st.tags == nil {
				st.tags = map[string]string{}
			}
			st.tags[strings.TrimPrefix(k, "tag.")] = v
		}
	}
	return st
}

// machineTags are the tags written on the host: req.Tags, with the three
// wharf tags set from the request. Keys and values keep to characters that
// are safe in the tags file and the shell.
func machineTags(req providers.CreateRequest) (map[string]string, error) {
	tags := map[string]string{}
	for k, v := range req.Tags {
		tags[k] = v
	}
	if req.MachineID == "" {
		return nil, fmt.Errorf("create: a machine id is required")
	}
	tags[providers.TagMachine] = req.MachineID
	if req.Cluster != "" {
		tags[providers.TagCluster] = req.Cluster
	}
	if req.Pool != "" {
		tags[providers.TagPool] = req.Pool
	}
	for k, v := range tags {
		if !safeTag(k) || !safeTag(v) {
			return nil, fmt.Errorf("create: tag %q=%q: only letters, digits and . _ : / @ + - are allowed", k, v)
		}
	}
	return tags, nil
}

func safeTag(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("._:/@+-", r):
		default:
			return false
		}
	}
	return true
}

// installScript turns user data into the script Create runs: a
// #cloud-config document's runcmd (each entry a command: a string as
// shell text, a list as an argv quoted word by word, as cloud-init runs
// them), stopping at the first that fails; or a script (#!) as it is.
func installScript(userData []byte) (string, error) {
	switch {
	case len(bytes.TrimSpace(userData)) == 0:
		return "", fmt.Errorf("create: no user data: nothing would install the agent")
	case bytes.HasPrefix(userData, []byte("#!")):
		return string(userData), nil
	case !bytes.HasPrefix(userData, []byte("#cloud-config")):
		return "", fmt.Errorf("create: user data is neither #cloud-config nor a #! script")
	}
	var doc struct {
		RunCmd []json.RawMessage `json:"runcmd"`
	}
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		return "", fmt.Errorf("create: user data: %w", err)
	}
	if len(doc.RunCmd) == 0 {
		return "", fmt.Errorf("create: user data has no runcmd: nothing would install the agent")
	}
	lines := []string{"set -e"}
	for i, raw := range doc.RunCmd {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			lines = append(lines, s)
			continue
		}
		var argv []string
		if err := json.Unmarshal(raw, &argv); err != nil || len(argv) == 0 {
			return "", fmt.Errorf("create: user data: runcmd entry %d: want a string or a list of strings", i+1)
		}
		quoted := make([]string, len(argv))
		for j, a := range argv {
			quoted[j] = shellQuote(a)
		}
		lines = append(lines, strings.Join(quoted, " "))
	}
	return strings.Join(lines, "\n") + "\n", nil
}
