package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultStateDir holds one <id>.pid file per live lab and the lock file
// that serializes sweeping and subnet allocation between labs.
const DefaultStateDir = "/run/wharf-netlab"

// Name prefixes: netns wnl<id>-<host>, bridge wnb<id>d<n>, veth wnv<id>h<n>.
const (
	nsPrefix     = "wnl"
	bridgePrefix = "wnb"
	vethPrefix   = "wnv"
	idLen        = 6
)

// labIDOf returns the lab id a netns or link name carries, if it is one of
// the harness's names.
func labIDOf(name string) (string, bool) {
	for _, p := range []string{nsPrefix, bridgePrefix, vethPrefix} {
		if !strings.HasPrefix(name, p) || len(name) < len(p)+idLen+1 {
			continue
		}
		id := name[len(p) : len(p)+idLen]
		if !isHex(id) {
			continue
		}
		next := name[len(p)+idLen]
		if p == nsPrefix && next != '-' || p == bridgePrefix && next != 'd' || p == vethPrefix && next != 'h' {
			continue
		}
		return id, true
	}
	return "", false
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// labState is the content of a state file.
type labState struct {
	id      string
	pid     int
	start   string // start time of pid, field 22 of /proc/<pid>/stat
	forward string // ip_forward before the first of the labs set it
	subnet  netip.Prefix
}

func (s labState) encode() string {
	return fmt.Sprintf("pid=%d\nstart=%s\nforward=%s\nsubnet=%s\n", s.pid, s.start, s.forward, s.subnet)
}

func decodeState(id, text string) labState {
	s := labState{id: id}
	for _, line := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "pid":
			s.pid, _ = strconv.Atoi(v)
		case "start":
			s.start = v
		case "forward":
			s.forward = v
		case "subnet":
			s.subnet, _ = netip.ParsePrefix(v)
		}
	}
	return s
}

// alive tells whether the lab's owner process still runs: the PID exists
// and has the recorded start time (so a reused PID does not count).
func (s labState) alive() bool {
	if s.pid <= 0 {
		return false
	}
	st, err := procStartTime(s.pid)
	return err == nil && st == s.start
}

// procStartTime returns field 22 (starttime) of /proc/<pid>/stat.
func procStartTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return f[19], nil
}

// stateStore is the state directory.
type stateStore struct {
	dir string
}

func (s stateStore) path(id string) string { return filepath.Join(s.dir, id+".pid") }

// lock takes the store's exclusive lock; the returned func releases it.
func (s stateStore) lock() (func(), error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() { f.Close() }, nil
}

// read returns every state file, by lab id.
func (s stateStore) read() (map[string]labState, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]labState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state dir: %w", err)
	}
	states := map[string]labState{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok || len(id) != idLen || !isHex(id) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		states[id] = decodeState(id, string(b))
	}
	return states, nil
}

func (s stateStore) write(st labState) error {
	if err := os.WriteFile(s.path(st.id), []byte(st.encode()), 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}

func (s stateStore) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove lab state: %w", err)
	}
	return nil
}

// removeLab deletes every object that carries the lab id: iptables rules,
// namespaces (killing the processes left in them first when killOrphans),
// veths and bridges. It returns the first error but tries everything.
func removeLab(p ipt, id string, killOrphans bool) error {
	var errs []error
	rules, err := p.list()
	errs = append(errs, err)
	for _, r := range rules {
		if r.id == id {
			errs = append(errs, p.delete(r.rule))
		}
	}
	links, err := linkList()
	errs = append(errs, err)
	delLinks := func(prefix string) {
		for _, l := range links {
			if got, ok := labIDOf(l); !ok || got != id || !strings.HasPrefix(l, prefix) {
				continue
			}
			if !linkExists(l) { // a veth vanishes with its peer
				continue
			}
			if _, err := run("ip", "link", "del", l); err != nil && linkExists(l) {
				errs = append(errs, fmt.Errorf("delete link %s: %w", l, err))
			}
		}
	}
	// veths first (synchronous, unlike the namespace's teardown), bridges
	// last.
	delLinks(vethPrefix)
	nss, err := netnsList()
	errs = append(errs, err)
	for _, ns := range nss {
		if got, ok := labIDOf(ns); !ok || got != id || !strings.HasPrefix(ns, nsPrefix) {
			continue
		}
		if killOrphans {
			killNetnsPids(ns)
		}
		if _, err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("delete netns %s: %w", ns, err))
		}
	}
	delLinks(bridgePrefix)
	return errors.Join(errs...)
}

// killNetnsPids SIGKILLs the processes still inside a dead lab's namespace
// (orphans of a crashed test: the harness started them).
func killNetnsPids(ns string) {
	for range 3 {
		out, err := run("ip", "netns", "pids", ns)
		if err != nil || strings.TrimSpace(out) == "" {
			return
		}
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sweep removes the objects of every lab that is not alive. Call it with
// the store locked. It returns the state files it found (before removal).
func sweep(store stateStore, p ipt) (map[string]labState, error) {
	states, err := store.read()
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for id := range states {
		ids[id] = true
	}
	nss, err := netnsList()
	if err != nil {
		return nil, err
	}
	links, err := linkList()
	if err != nil {
		return nil, err
	}
	for _, n := range append(nss, links...) {
		if id, ok := labIDOf(n); ok {
			ids[id] = true
		}
	}
	rules, err := p.list()
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		ids[r.id] = true
	}
	var errs []error
	for id := range ids {
		if st, ok := states[id]; ok && st.alive() {
			continue
		}
		if err := removeLab(p, id, true); err != nil {
			errs = append(errs, fmt.Errorf("sweep dead lab %s: %w", id, err))
			continue
		}
		errs = append(errs, store.remove(id))
	}
	return states, errors.Join(errs...)
}

// usedPrefixes returns the IPv4 prefixes of every route of this machine
// (all tables) and of every address.
func usedPrefixes() ([]netip.Prefix, error) {
	out, err := run("ip", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var ps []netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		switch dst {
		case "local", "broadcast", "unicast", "multicast", "unreachable", "blackhole", "prohibit", "throw", "anycast", "nat":
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if p, ok := parsePrefixOrAddr(dst); ok {
			ps = append(ps, p)
		}
	}
	out, err = run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				if p, err := netip.ParsePrefix(f[i+1]); err == nil {
					ps = append(ps, p.Masked())
				}
			}
		}
	}
	return ps, nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return netip.PrefixFrom(a, 32), true
	}
	return netip.Prefix{}, false
}
