package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Options configures a Lab. The zero value is fine.
type Options struct {
	// Subnet is the /16 the lab takes its datacenter /24s from. Zero: the
	// first of 10.231.0.0/16 … 10.250.0.0/16 that no route or address of
	// this machine and no live lab overlaps.
	Subnet netip.Prefix
	// IPTables names the iptables binary (iptables, iptables-nft,
	// iptables-legacy). Empty: "iptables", unless only iptables-legacy
	// holds Docker's chains.
	IPTables string
	// StateDir holds the labs' state files and lock; empty:
	// DefaultStateDir. Labs only see each other through the same StateDir.
	StateDir string
}

// Lab is one throw-away network of datacenters and hosts. Its methods that
// change the topology fail the test (t.Fatal) on error, so call them from
// the test's goroutine; process methods return errors instead, and so do
// TryAddHost and RemoveHost, which any goroutine may call.
type Lab struct {
	t      testing.TB
	id     string
	ipt    ipt
	fwd    string // chain of the forward rules: DOCKER-USER or FORWARD
	store  stateStore
	state  labState
	logDir string

	mu     sync.Mutex
	dcs    []*DC
	hosts  map[string]*Host
	nhosts int
	closed bool
}

// DC is a datacenter: one bridge and /24.
type DC struct {
	lab    *Lab
	name   string
	index  int
	bridge string
	prefix netip.Prefix
	gw     netip.Addr

	// guarded by lab.mu
	added    int // hosts ever added: the next address is .added+2
	hosts    []*Host
	cutRules []rule
	isoRules []rule // root namespace INPUT; nil unless isolated
}

// Available tells whether this machine can run a lab: root, the ip and
// iptables tools, IPv4 forwarding and network namespace creation. It
// creates and deletes one probe namespace.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("netlab needs root (network namespaces, bridges, iptables)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("netlab needs iproute2's ip: %w", err)
	}
	if _, err := detectIPTables(""); err != nil {
		return fmt.Errorf("netlab needs a working iptables: %w", err)
	}
	if _, err := readSysctl(ipForwardPath); err != nil {
		return fmt.Errorf("netlab needs IPv4 forwarding: %w", err)
	}
	id, err := newID()
	if err != nil {
		return err
	}
	// A probe left behind by a crash has no state file: the next sweep
	// takes it.
	ns := nsPrefix + id + "-probe"
	if _, err := run("ip", "netns", "add", ns); err != nil {
		return fmt.Errorf("netlab cannot create a network namespace: %w", err)
	}
	if _, err := run("ip", "netns", "del", ns); err != nil {
		return fmt.Errorf("netlab cannot delete its probe namespace: %w", err)
	}
	return nil
}

// Require skips the test when Available fails, or fails it when the
// environment variable WHARF_REQUIRE_NETNS is 1.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("WHARF_REQUIRE_NETNS") == "1" {
			t.Fatalf("WHARF_REQUIRE_NETNS=1 but: %v", err)
		}
		t.Skipf("netlab unavailable: %v", err)
	}
}

func newID() (string, error) {
	b := make([]byte, idLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lab id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// New creates an empty lab (no datacenters yet), first sweeping the
// leftovers of dead labs. t.Cleanup kills the lab's processes and removes
// all it created, also when the test fails or panics.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("netlab.New: needs root (call netlab.Require first)")
	}
	p, err := detectIPTables(opts.IPTables)
	if err != nil {
		t.Fatalf("netlab.New: %v", err)
	}
	id, err := newID()
	if err != nil {
		t.Fatalf("netlab.New: %v", err)
	}
	dir := opts.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	start, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatalf("netlab.New: own start time: %v", err)
	}
	l := &Lab{
		t:      t,
		id:     id,
		ipt:    p,
		fwd:    "FORWARD",
		store:  stateStore{dir: dir},
		logDir: t.TempDir(), // before Cleanup: removed after the lab is gone
		hosts:  map[string]*Host{},
		state:  labState{id: id, pid: os.Getpid(), start: start},
	}
	if p.chainExists("DOCKER-USER") {
		l.fwd = "DOCKER-USER"
	}
	if err := l.register(opts.Subnet); err != nil {
		t.Fatalf("netlab.New: %v", err)
	}
	t.Cleanup(l.cleanup)
	if err := l.insertBaseRules(); err != nil {
		t.Fatalf("netlab.New: %v", err)
	}
	return l
}

// register sweeps dead labs, picks the subnet, records ip_forward's
// original value and writes the state file, all under the store lock.
func (l *Lab) register(subnet netip.Prefix) error {
	unlock, err := l.store.lock()
	if err != nil {
		return err
	}
	defer unlock()
	states, err := sweep(l.store, l.ipt)
	if err != nil {
		return err
	}
	cur, err := readSysctl(ipForwardPath)
	if err != nil {
		return err
	}
	// The value before any lab set it: a lab that found forwarding off
	// knows it best, dead or alive.
	orig := cur
	for _, st := range states {
		if st.forward == "0" {
			orig = "0"
		}
	}
	l.state.forward = orig

	var live []netip.Prefix
	for _, st := range states {
		if st.alive() && st.subnet.IsValid() {
			live = append(live, st.subnet)
		}
	}
	used, err := usedPrefixes()
	if err != nil {
		return err
	}
	taken := func(p netip.Prefix) string {
		for _, u := range live {
			if u.Overlaps(p) {
				return "live lab subnet " + u.String()
			}
		}
		for _, u := range used {
			if u.Bits() > 0 && u.Overlaps(p) {
				return "route or address " + u.String()
			}
		}
		return ""
	}
	if subnet.IsValid() {
		if !subnet.Addr().Is4() || subnet.Bits() != 16 {
			return fmt.Errorf("Options.Subnet %s: want an IPv4 /16", subnet)
		}
		subnet = subnet.Masked()
		if why := taken(subnet); why != "" {
			return fmt.Errorf("Options.Subnet %s overlaps %s", subnet, why)
		}
	} else {
		for o := 231; o <= 250; o++ {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(o), 0, 0}), 16)
			if taken(p) == "" {
				subnet = p
				break
			}
		}
		if !subnet.IsValid() {
			return errors.New("no free subnet in 10.231.0.0/16 … 10.250.0.0/16")
		}
	}
	l.state.subnet = subnet
	if err := l.store.write(l.state); err != nil {
		return err
	}
	if cur != "1" {
		if err := writeSysctl(ipForwardPath, "1"); err != nil {
			return err
		}
	}
	return nil
}

// comment returns the iptables comment arguments for a rule of this lab.
func (l *Lab) comment(tag string) []string {
	return []string{"-m", "comment", "--comment", fmt.Sprintf("%s%s:%d:%s", commentPrefix, l.id, l.state.pid, tag)}
}

func (l *Lab) bridgeGlob() string { return bridgePrefix + l.id + "+" }

// insertBaseRules lets traffic flow between the lab's bridges and drops
// whatever else enters or leaves them (nothing escapes this machine).
func (l *Lab) insertBaseRules() error {
	c := l.comment("base")
	g := l.bridgeGlob()
	// Inserted at the top in reverse: ACCEPT, then the two DROPs.
	for _, r := range []rule{
		{l.fwd, append(append([]string{"-o", g}, c...), "-j", "DROP")},
		{l.fwd, append(append([]string{"-i", g}, c...), "-j", "DROP")},
		{l.fwd, append(append([]string{"-i", g, "-o", g}, c...), "-j", "ACCEPT")},
	} {
		if err := l.ipt.insert(r); err != nil {
			return err
		}
	}
	return nil
}

// ID is the lab's random id, part of every name it creates.
func (l *Lab) ID() string { return l.id }

// Subnet is the /16 of the lab.
func (l *Lab) Subnet() netip.Prefix { return l.state.subnet }

// ForwardChain is the iptables chain that holds the lab's forward rules:
// DOCKER-USER or FORWARD.
func (l *Lab) ForwardChain() string { return l.fwd }

// IPTables is the iptables binary the lab uses.
func (l *Lab) IPTables() string { return l.ipt.bin }

// DCs returns the datacenters in creation order.
func (l *Lab) DCs() []*DC {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*DC(nil), l.dcs...)
}

// Host returns the host of that name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// validName tells whether a datacenter or host name is 1-32 of [a-z0-9-],
// not starting with '-'.
func validName(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// AddDC creates a datacenter: a bridge with the next /24 of the lab.
func (l *Lab) AddDC(name string) *DC {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !validName(name) {
		l.t.Fatalf("netlab: datacenter name %q: want [a-z0-9-], at most 32", name)
	}
	for _, d := range l.dcs {
		if d.name == name {
			l.t.Fatalf("netlab: datacenter %q exists", name)
		}
	}
	idx := len(l.dcs)
	if idx >= 200 {
		l.t.Fatalf("netlab: too many datacenters")
	}
	b := l.state.subnet.Addr().As4()
	b[2] = byte(idx + 1)
	b[3] = 0
	prefix := netip.PrefixFrom(netip.AddrFrom4(b), 24)
	b[3] = 1
	d := &DC{
		lab: l, name: name, index: idx,
		bridge: bridgePrefix + l.id + "d" + strconv.Itoa(idx),
		prefix: prefix, gw: netip.AddrFrom4(b),
	}
	// A bridge without an address of its own takes the lowest of its
	// ports' and changes it whenever a port with a lower one joins: the
	// hosts that knew the old one lose the gateway until their neighbour
	// entry is renewed. A fixed address (locally administered, from the
	// lab's subnet, which no other live lab shares) never changes.
	mac := fmt.Sprintf("02:77:%02x:%02x:%02x:01", b[0], b[1], b[2])
	if err := ipBatch("",
		"link add "+d.bridge+" address "+mac+" type bridge",
		"addr add "+netip.PrefixFrom(d.gw, 24).String()+" dev "+d.bridge,
		"link set "+d.bridge+" up",
	); err != nil {
		l.t.Fatalf("add bridge %s: %v", d.bridge, err)
	}
	l.dcs = append(l.dcs, d)
	return d
}

// Name is the datacenter's name.
func (d *DC) Name() string { return d.name }

// Bridge is the name of the datacenter's bridge in the root namespace.
func (d *DC) Bridge() string { return d.bridge }

// Prefix is the datacenter's /24.
func (d *DC) Prefix() netip.Prefix { return d.prefix }

// Gateway is the bridge's address (.1), the hosts' default route and the
// source address of the test process towards the datacenter.
func (d *DC) Gateway() netip.Addr { return d.gw }

// Lab is the datacenter's lab.
func (d *DC) Lab() *Lab { return d.lab }

// Hosts returns the datacenter's hosts in creation order.
func (d *DC) Hosts() []*Host {
	d.lab.mu.Lock()
	defer d.lab.mu.Unlock()
	return append([]*Host(nil), d.hosts...)
}

// AddHost creates a host in the datacenter: a network namespace with lo
// up and eth0 (a veth whose peer is a port of the bridge) at the next
// address .2, .3, …, default route via the gateway. Host names are unique
// in the lab.
func (d *DC) AddHost(name string) *Host {
	d.lab.t.Helper()
	h, err := d.TryAddHost(name)
	if err != nil {
		d.lab.t.Fatalf("netlab: %v", err)
	}
	return h
}

// TryAddHost is AddHost returning its error instead of failing the test,
// for code that adds hosts off the test's goroutine (a simulated cloud
// booting a machine). Addresses are never reused within a datacenter,
// even after RemoveHost.
func (d *DC) TryAddHost(name string) (*Host, error) {
	l := d.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, fmt.Errorf("add host %q: lab closed", name)
	case !validName(name):
		return nil, fmt.Errorf("host name %q: want [a-z0-9-], at most 32", name)
	case l.hosts[name] != nil:
		return nil, fmt.Errorf("host %q exists", name)
	case d.added >= 250:
		return nil, fmt.Errorf("too many hosts in datacenter %s", d.name)
	}
	b := d.prefix.Addr().As4()
	b[3] = byte(d.added + 2)
	h := &Host{
		lab: l, dc: d, name: name,
		ns:      nsPrefix + l.id + "-" + name,
		veth:    vethPrefix + l.id + "h" + strconv.Itoa(l.nhosts),
		ip:      netip.AddrFrom4(b),
		logPath: filepath.Join(l.logDir, name+".log"),
	}
	f, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("host log: %w", err)
	}
	f.Close()
	if _, err := run("ip", "netns", "add", h.ns); err != nil {
		return nil, fmt.Errorf("add netns %s: %w", h.ns, err)
	}
	// Registered now so that cleanup removes it even if the rest fails.
	l.nhosts++
	d.added++
	l.hosts[name] = h
	d.hosts = append(d.hosts, h)
	if err := ipBatch("",
		"link add "+h.veth+" type veth peer name eth0 netns "+h.ns,
		"link set "+h.veth+" master "+d.bridge,
		"link set "+h.veth+" up",
	); err != nil {
		return nil, fmt.Errorf("add veth %s: %w", h.veth, err)
	}
	if err := ipBatch(h.ns,
		"link set lo up",
		"addr add "+netip.PrefixFrom(h.ip, 24).String()+" dev eth0",
		"link set eth0 up",
		"route add default via "+d.gw.String(),
	); err != nil {
		return nil, fmt.Errorf("configure netns %s: %w", h.ns, err)
	}
	if d.isoRules != nil {
		if err := l.isolateHost(h); err != nil {
			return nil, fmt.Errorf("add host %s to isolated %s: %w", name, d.name, err)
		}
	}
	return h, nil
}

// RemoveHost kills everything that runs in the host (as Kill) and deletes
// its namespace, which takes its veth pair with it: a machine that was
// deleted. Safe off the test's goroutine.
func (l *Lab) RemoveHost(h *Host) error {
	kerr := h.Kill()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hosts[h.name] != h {
		return kerr // removed already, or by the lab's cleanup
	}
	if _, err := run("ip", "netns", "del", h.ns); err != nil {
		return errors.Join(kerr, fmt.Errorf("delete netns %s: %w", h.ns, err))
	}
	delete(l.hosts, h.name)
	d := h.dc
	d.hosts = slices.DeleteFunc(d.hosts, func(x *Host) bool { return x == h })
	return kerr
}

// Cut drops all traffic between the datacenter and every other
// datacenter, both ways, established flows (TCP, UDP/QUIC) included. Hosts
// inside it still reach each other, and the test process still reaches
// every host. Cutting a cut datacenter does nothing.
func (l *Lab) Cut(d *DC) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.cutLocked(d); err != nil {
		l.t.Fatalf("netlab: cut %s: %v", d.name, err)
	}
}

func (l *Lab) cutLocked(d *DC) error {
	if d.cutRules != nil {
		return nil
	}
	c := l.comment("cut-" + d.name)
	rules := []rule{
		{l.fwd, append(append([]string{"-i", d.bridge, "!", "-o", d.bridge}, c...), "-j", "DROP")},
		{l.fwd, append(append([]string{"!", "-i", d.bridge, "-o", d.bridge}, c...), "-j", "DROP")},
	}
	for i, r := range rules {
		if err := l.ipt.insert(r); err != nil {
			d.cutRules = rules[:i]
			return err
		}
	}
	d.cutRules = rules
	return nil
}

// Isolate makes the datacenter vanish: Cut, and also no traffic between
// it and the root namespace (the test process), established flows
// included. Packets are dropped silently both ways, so either side sees
// timeouts (not errors): INPUT from the bridge is dropped in the root
// namespace, and each host of the datacenter (also one added later) drops
// on its eth0 whatever comes from the gateway or from outside its /24.
func (l *Lab) Isolate(d *DC) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.cutLocked(d); err != nil {
		l.t.Fatalf("netlab: isolate %s: %v", d.name, err)
	}
	if d.isoRules != nil {
		return
	}
	r := rule{"INPUT", append(append([]string{"-i", d.bridge}, l.comment("iso-"+d.name)...), "-j", "DROP")}
	if err := l.ipt.insert(r); err != nil {
		l.t.Fatalf("netlab: isolate %s: %v", d.name, err)
	}
	d.isoRules = []rule{r}
	for _, h := range d.hosts {
		if err := l.isolateHost(h); err != nil {
			l.t.Fatalf("netlab: isolate %s: %v", d.name, err)
		}
	}
}

// hostIsoRules are the rules inside a host of an isolated datacenter.
func (l *Lab) hostIsoRules(h *Host) []rule {
	c := l.comment("iso-" + h.dc.name)
	return []rule{
		{"INPUT", append(append([]string{"-i", "eth0", "!", "-s", h.dc.prefix.String()}, c...), "-j", "DROP")},
		{"INPUT", append(append([]string{"-i", "eth0", "-s", h.dc.gw.String()}, c...), "-j", "DROP")},
	}
}

func (l *Lab) isolateHost(h *Host) error {
	for _, r := range l.hostIsoRules(h) {
		if err := l.ipt.in(h.ns).insert(r); err != nil {
			return fmt.Errorf("in host %s: %w", h.name, err)
		}
	}
	return nil
}

// Heal undoes Cut and Isolate of the datacenter.
func (l *Lab) Heal(d *DC) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	if d.isoRules != nil {
		for _, h := range d.hosts {
			for _, r := range l.hostIsoRules(h) {
				errs = append(errs, l.ipt.in(h.ns).delete(r))
			}
		}
	}
	for _, r := range append(d.isoRules, d.cutRules...) {
		errs = append(errs, l.ipt.delete(r))
	}
	d.isoRules, d.cutRules = nil, nil
	if err := errors.Join(errs...); err != nil {
		l.t.Fatalf("netlab: heal %s: %v", d.name, err)
	}
}

// CutHost pulls the host's cable: its bridge-side veth goes down, so no
// one (its datacenter, other datacenters, the test process) reaches it and
// it reaches no one; processes in it keep running.
func (l *Lab) CutHost(h *Host) {
	l.t.Helper()
	if _, err := run("ip", "link", "set", h.veth, "down"); err != nil {
		l.t.Fatalf("netlab: cut host %s: %v", h.name, err)
	}
}

// HealHost plugs the host's cable back in.
func (l *Lab) HealHost(h *Host) {
	l.t.Helper()
	if _, err := run("ip", "link", "set", h.veth, "up"); err != nil {
		l.t.Fatalf("netlab: heal host %s: %v", h.name, err)
	}
}

// KillDC SIGKILLs and reaps the processes of every host of the
// datacenter.
func (l *Lab) KillDC(d *DC) error {
	var errs []error
	for _, h := range d.Hosts() {
		errs = append(errs, h.Kill())
	}
	return errors.Join(errs...)
}

// cleanup kills the processes, removes every object of the lab, restores
// ip_forward if no other lab lives, and removes the state file.
func (l *Lab) cleanup() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	var hosts []*Host
	for _, d := range l.dcs {
		hosts = append(hosts, d.hosts...)
	}
	l.mu.Unlock()

	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.Kill()) // the namespace's strays too
	}
	if l.t.Failed() {
		for _, h := range hosts {
			h.logTail(40)
		}
	}
	errs = append(errs, removeLab(l.ipt, l.id, false))
	errs = append(errs, l.leftovers())

	unlock, err := l.store.lock()
	if err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, l.store.remove(l.id))
		if l.state.forward == "0" {
			others := false
			if states, err := l.store.read(); err == nil {
				for _, st := range states {
					others = others || st.alive()
				}
			} else {
				others = true
			}
			if !others {
				errs = append(errs, writeSysctl(ipForwardPath, "0"))
			}
		}
		unlock()
	}
	if err := errors.Join(errs...); err != nil {
		l.t.Errorf("netlab: cleanup of lab %s: %v", l.id, err)
	}
}

// leftovers reports any object that still carries the lab id.
func (l *Lab) leftovers() error {
	var left []string
	nss, err := netnsList()
	if err != nil {
		return err
	}
	links, err := linkList()
	if err != nil {
		return err
	}
	for _, n := range append(nss, links...) {
		if id, ok := labIDOf(n); ok && id == l.id {
			left = append(left, n)
		}
	}
	rules, err := l.ipt.list()
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.id == l.id {
			left = append(left, r.chain+" "+strings.Join(r.args, " "))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
	}
	return nil
}
