// Package netboot boots cloudsim's simulated machines for real: every
// instance becomes a new host of an e2e/netlab lab (its own network
// namespace and address), and its user data's cloud-config runcmd runs
// there with /bin/sh, as cloud-init would run it on first boot.
//
// A machine gets its own disk and name: the commands run in a private
// mount and UTS namespace (unshare --mount --uts), with the instance id as
// host name (agents default their name to it, and names are unique in a
// pool; see HostName for ids a host name cannot hold), where /etc, /usr/local and /var are overlays
// whose upper layers live under Options.Dir/<instance id>/upper, so what a
// machine installs (a binary in /usr/local/bin, a unit in
// /etc/systemd/system, state in /var/lib) never touches this machine's
// files. If an overlay cannot be mounted the boot fails; nothing falls back
// to the real directories.
//
// The machines have no systemd. A systemctl on their PATH takes its place
// for what an installer does: daemon-reload does nothing; enable --now,
// start and restart run the unit's ExecStart in the background (output to
// /var/log/UNIT.log, inside the machine); stop kills it; is-active tells.
// Restart= is not simulated.
//
// Terminating the instance (or closing the simulator) ends Boot's context:
// the host's processes are killed and the host removed.
package netboot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/netlab"
)

// overlaid are the directories a machine writes to its own disk.
var overlaid = []string{"/etc", "/usr/local", "/var"}

// Options configures a Booter.
type Options struct {
	// Dir holds every machine's disk layers, scripts and console log
	// (one subdirectory per instance); required, typically t.TempDir().
	// It may not be below one of the overlaid directories.
	Dir string
	// Env is added to the environment runcmd starts with (which is this
	// process's).
	Env []string
	// Logger gets a line per boot and per end; nil discards.
	Logger *slog.Logger
}

// Booter boots instances as hosts of one netlab datacenter. Its Boot is a
// cloudsim.BootFunc.
type Booter struct {
	dc   *netlab.DC
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	machines map[string]*Machine
}

// New makes a Booter whose machines join dc.
func New(dc *netlab.DC, opts Options) (*Booter, error) {
	if opts.Dir == "" {
		return nil, errors.New("netboot: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("netboot: %w", err)
	}
	for _, o := range overlaid {
		if dir == o || strings.HasPrefix(dir, o+"/") {
			return nil, fmt.Errorf("netboot: Dir %s is below %s, which machines overlay", dir, o)
		}
	}
	opts.Dir = dir
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Booter{dc: dc, opts: opts, log: log, machines: map[string]*Machine{}}, nil
}

// Machine is one booted instance.
type Machine struct {
	ID   string
	Host *netlab.Host // nil when the host could not be made
	// Dir is the machine's directory: upper/<dir> holds what it wrote
	// below each overlaid directory, console.log runcmd's output.
	Dir string

	done chan struct{} // closed when runcmd has finished
	err  error         // runcmd's outcome, set before done is closed
}

// Path is where a file the machine wrote at path (below an overlaid
// directory) is on this machine's disk; "" for other paths.
func (m *Machine) Path(path string) string {
	for _, o := range overlaid {
		if rest, ok := strings.CutPrefix(path, o+"/"); ok || path == o {
			return filepath.Join(m.Dir, "upper", layerName(o), rest)
		}
	}
	return ""
}

// Wait waits until runcmd has finished and returns its outcome.
func (m *Machine) Wait(ctx context.Context) error {
	select {
	case <-m.done:
		return m.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Console is runcmd's output so far.
func (m *Machine) Console() string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "console.log"))
	return string(b)
}

// Machine returns the machine booted for an instance id.
func (b *Booter) Machine(id string) (*Machine, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.machines[id]
	return m, ok
}

// Boot makes the instance's host, runs its runcmd there and keeps the
// host until ctx ends; then it removes the host and returns runcmd's
// error, if any.
func (b *Booter) Boot(ctx context.Context, inst cloudsim.Instance) error {
	m := &Machine{ID: inst.ID, Dir: filepath.Join(b.opts.Dir, inst.ID), done: make(chan struct{})}
	err := b.boot(ctx, m, inst)
	if err != nil {
		m.err = err
		close(m.done)
	}
	// Listed once set up, so that readers never see a half-made machine.
	b.mu.Lock()
	b.machines[inst.ID] = m
	b.mu.Unlock()
	if err != nil {
		return err
	}
	<-ctx.Done()
	if rerr := b.dc.Lab().RemoveHost(m.Host); rerr != nil {
		b.log.Warn("netboot: remove host", "instance", inst.ID, "error", rerr)
	}
	<-m.done // the host's processes are dead: runcmd has finished
	b.log.Debug("netboot: machine gone", "instance", inst.ID)
	return m.err
}

// HostName is the lab host (and host name) of an instance: its id when
// that is a valid host name (EC2's i-..., vSphere's vm-...), else the id
// lower-cased with what a host name cannot hold dropped, so that a Nova
// UUID becomes its 32 hex digits; ids longer still are cut and keep a
// hash of the whole.
func HostName(id string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(id) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		}
	}
	name := strings.TrimLeft(b.String(), "-")
	if name == id && len(name) <= 32 {
		return name
	}
	if len(name) > 32 {
		name = strings.ReplaceAll(name, "-", "")
	}
	if len(name) > 32 || name == "" {
		sum := sha256.Sum256([]byte(id))
		name = strings.TrimRight(name[:min(len(name), 23)], "-") + "-" + hex.EncodeToString(sum[:4])
		name = strings.TrimLeft(name, "-")
	}
	return name
}

// boot starts runcmd in a new host; it returns once runcmd runs.
func (b *Booter) boot(ctx context.Context, m *Machine, inst cloudsim.Instance) error {
	script, err := Script(inst.UserData)
	if err != nil {
		return fmt.Errorf("netboot: instance %s: %w", inst.ID, err)
	}
	if err := b.writeFiles(m.Dir, HostName(inst.ID), script); err != nil {
		return fmt.Errorf("netboot: instance %s: %w", inst.ID, err)
	}
	console, err := os.OpenFile(filepath.Join(m.Dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("netboot: %w", err)
	}
	defer console.Close() // the child has its own copy
	h, err := b.dc.TryAddHost(HostName(inst.ID))
	if err != nil {
		return fmt.Errorf("netboot: instance %s: %w", inst.ID, err)
	}
	m.Host = h
	cmd := h.Command(ctx, "unshare", "--mount", "--uts", "--propagation", "private", "/bin/sh", filepath.Join(m.Dir, "boot.sh"))
	cmd.Env = append(os.Environ(), b.opts.Env...)
	cmd.Dir = m.Dir
	cmd.Stdout, cmd.Stderr = console, console
	if err := h.Start(cmd); err != nil {
		if rerr := b.dc.Lab().RemoveHost(h); rerr != nil {
			b.log.Warn("netboot: remove host", "instance", inst.ID, "error", rerr)
		}
		return fmt.Errorf("netboot: instance %s: %w", inst.ID, err)
	}
	b.log.Debug("netboot: booting", "instance", inst.ID, "host", h.Name(), "ip", h.IP())
	go func() {
		<-h.Done(cmd)
		if st := cmd.ProcessState; st != nil && !st.Success() {
			m.err = fmt.Errorf("netboot: instance %s: runcmd: %s (console: %s)", inst.ID, st, filepath.Join(m.Dir, "console.log"))
		}
		close(m.done)
	}()
	return nil
}

func layerName(dir string) string { return strings.ReplaceAll(strings.Trim(dir, "/"), "/", "-") }

// writeFiles lays out a machine's directory: the overlay layers, the boot
// wrapper, runcmd and the systemctl stand-in.
func (b *Booter) writeFiles(dir, hostname, script string) error {
	var mounts strings.Builder
	for _, o := range overlaid {
		n := layerName(o)
		for _, d := range []string{"upper/" + n, "work/" + n} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		fmt.Fprintf(&mounts, "mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s\n",
			o, shellQuote(filepath.Join(dir, "upper", n)), shellQuote(filepath.Join(dir, "work", n)), o)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	boot := "#!/bin/sh\n" +
		"# Runs in a private mount and UTS namespace: first the machine's own disk and name, then runcmd.\n" +
		"set -e\n" +
		mounts.String() +
		"echo " + shellQuote(hostname) + " >/proc/sys/kernel/hostname\n" +
		"export PATH=" + shellQuote(filepath.Join(dir, "bin")) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n" +
		"export HOME=/root\n" +
		"cd /\n" +
		"exec /bin/sh " + shellQuote(filepath.Join(dir, "runcmd.sh")) + "\n"
	files := map[string]string{"boot.sh": boot, "runcmd.sh": script, "bin/systemctl": systemctl}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Script turns user data into the shell script a first boot runs: a
// "#!" script as it is, a "#cloud-config" document's runcmd (strings as
// shell lines, lists as argv), like cloud-init's runcmd module.
func Script(userData []byte) (string, error) {
	s := string(userData)
	switch {
	case strings.HasPrefix(s, "#!"):
		return s, nil
	case !strings.HasPrefix(s, "#cloud-config"):
		return "", errors.New("user data is neither #cloud-config nor a #! script")
	}
	var doc struct {
		RunCmd []json.RawMessage `json:"runcmd"`
	}
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		return "", fmt.Errorf("cloud-config: %w", err)
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for i, raw := range doc.RunCmd {
		var line string
		var argv []string
		switch {
		case json.Unmarshal(raw, &line) == nil:
			b.WriteString(line)
		case json.Unmarshal(raw, &argv) == nil:
			for j, a := range argv {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(shellQuote(a))
			}
		default:
			return "", fmt.Errorf("cloud-config: runcmd item %d is neither a string nor a list of strings", i+1)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// systemctl stands in for systemd on a simulated machine.
const systemctl = `#!/bin/sh
# systemctl of a simulated machine: no systemd; a started unit's ExecStart
# runs in the background, its pid in /var/lib/netboot-systemctl.
cmd=""; now=""; units=""
for a in "$@"; do
	case "$a" in
	--now) now=1 ;;
	-*) ;;
	*) if [ -z "$cmd" ]; then cmd=$a; else units="$units $a"; fi ;;
	esac
done
state=/var/lib/netboot-systemctl
mkdir -p "$state" /var/log
unit() { case "$1" in *.*) echo "$1" ;; *) echo "$1.service" ;; esac; }
start() {
	u=$(unit "$1"); f=/etc/systemd/system/$u
	[ -f "$f" ] || { echo "Unit $u not found." >&2; exit 5; }
	line=$(sed -n 's/^ExecStart=//p' "$f" | head -n 1)
	[ -n "$line" ] || { echo "Unit $u has no ExecStart." >&2; exit 1; }
	stop "$u"
	nohup /bin/sh -c "exec $line" >>"/var/log/$u.log" 2>&1 </dev/null &
	echo $! >"$state/$u.pid"
}
stop() {
	u=$(unit "$1")
	if [ -f "$state/$u.pid" ]; then kill "$(cat "$state/$u.pid")" 2>/dev/null || true; rm -f "$state/$u.pid"; fi
}
active() {
	u=$(unit "$1")
	[ -f "$state/$u.pid" ] && kill -0 "$(cat "$state/$u.pid")" 2>/dev/null
}
case "$cmd" in
daemon-reload) ;;
enable) if [ -n "$now" ]; then for u in $units; do start "$u"; done; fi ;;
start | restart) for u in $units; do start "$u"; done ;;
stop | disable) for u in $units; do stop "$u"; done ;;
is-active | status) for u in $units; do active "$u" || { echo inactive; exit 3; }; done; echo active ;;
*) echo "systemctl $cmd: not simulated on this machine" >&2; exit 1 ;;
esac
`
