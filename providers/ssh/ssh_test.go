package ssh

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-platform/wharf/installer"
	"github.com/wharf-platform/wharf/providers"
)

// hub is a test hub's installer endpoints: the real install.sh, and a fake
// agent as the binary (it appends its arguments to $WHARF_ROOT/agent.args
// and sleeps), so an install is real but starts nothing of Wharf.
type hub struct {
	*httptest.Server
	installs atomic.Int64 // GET /install.sh served
}

func startHub(t testing.TB, serveBinary bool) *hub {
	t.Helper()
	h := &hub{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /install.sh", func(w http.ResponseWriter, r *http.Request) {
		h.installs.Add(1)
		b, err := installer.Script("http://"+r.Host, []string{"10.1.0.1:7481"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	if serveBinary {
		mux.HandleFunc("GET /download/wharf-linux-"+runtime.GOARCH, func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("#!/bin/sh\necho \"$*\" >>\"$WHARF_ROOT/agent.args\"\nexec sleep 300\n"))
		})
	}
	h.Server = httptest.NewServer(mux)
	t.Cleanup(h.Close)
	return h
}

// userData is the cloud-config the hub would give machine id: the first
// hub URL is dead, so the install has to go on to the second.
func (h *hub) userData(t testing.TB, id string) []byte {
	t.Helper()
	b, err := installer.CloudConfig(installer.Join{
		HubURLs:   []string{"http://127.0.0.1:" + strconv.Itoa(freePort(t)), h.URL},
		Gateways:  []string{"10.1.0.1:7481", "10.2.0.1:7481"},
		JoinToken: "WJ1.join-" + id,
		MachineID: id,
		Pool:      "metal",
		Rounds:    1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stopAgentsOnCleanup kills what an install on s left running if the test
// did not uninstall it: the restart loop's process group, by its PID.
func stopAgentsOnCleanup(t testing.TB, s *sshd) {
	t.Helper()
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(s.Root, "var/lib/wharf-agent/agent.pid"))
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

func account(key []byte, pins map[string]string) providers.Account {
	return providers.Account{Name: "metal", Type: "ssh", Credentials: providers.Credentials{User: "root", PrivateKey: string(key), HostKeyFingerprints: pins}}
}

func request(h *hub, t testing.TB, id string, hosts ...string) providers.CreateRequest {
	return providers.CreateRequest{
		MachineID: id, Cluster: "c1", Pool: "metal",
		Template: providers.Template{Hosts: hosts},
		UserData: h.userData(t, id),
		Tags:     map[string]string{providers.TagCluster: "c1", providers.TagPool: "metal", providers.TagMachine: id},
	}
}

func newProvider(t testing.TB, acct providers.Account) *Provider {
	t.Helper()
	p, err := New(acct, Options{DialTimeout: 5 * time.Second, CommandTimeout: 30 * time.Second, InstallTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantKind(t testing.TB, what string, err error, kind providers.Kind) {
	t.Helper()
	if providers.KindOf(err) != kind {
		t.Fatalf("%s: %v (kind %q), want kind %q", what, err, providers.KindOf(err), kind)
	}
}

func agentArgs(s *sshd) string {
	b, _ := os.ReadFile(filepath.Join(s.Root, "agent.args"))
	return string(b)
}

func TestCreateDescribeListDelete(t *testing.T) {
	ctx := context.Background()
	client, key := newKey(t)
	h1, h2 := startSSHD(t, client.PublicKey()), startSSHD(t, client.PublicKey())
	stopAgentsOnCleanup(t, h1)
	stopAgentsOnCleanup(t, h2)
	hub := startHub(t, true)
	// A third pinned host is down: List leaves it out.
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := newProvider(t, account(key, map[string]string{h1.Addr: h1.Fingerprint, h2.Addr: h2.Fingerprint, dead: h1.Fingerprint}))
	if err := p.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}

	m1, err := p.Create(ctx, request(hub, t, "m-1", dead, h1.Addr, h2.Addr))
	if err != nil {
		t.Fatalf("create m-1 (the first host of the template down): %v", err)
	}
	if m1.ProviderID != h1.Addr || m1.MachineID != "m-1" || m1.State != providers.StateRunning || m1.Tags[providers.TagCluster] != "c1" {
		t.Fatalf("m-1 = %+v, want running on %s", m1, h1.Addr)
	}
	if id, _ := os.ReadFile(filepath.Join(h1.Root, "var/lib/wharf-agent/machine-id")); string(id) != "m-1\n" {
		t.Fatalf("machine-id on the host: %q", id)
	}
	waitFor(t, "the agent on h1", func() bool { return agentArgs(h1) != "" })
	for _, want := range []string{"--token WJ1.join-m-1", "--machine-id m-1", "--pool metal", "--hub 10.1.0.1:7481 --hub 10.2.0.1:7481"} {
		if !strings.Contains(agentArgs(h1), want) {
			t.Errorf("agent args %q lack %q", agentArgs(h1), want)
		}
	}

	// Idempotent: the same machine again is the same host, not a second install.
	again, err := p.Create(ctx, request(hub, t, "m-1", dead, h1.Addr, h2.Addr))
	if err != nil || again.ProviderID != h1.Addr || again.State != providers.StateRunning {
		t.Fatalf("create m-1 again: %+v %v", again, err)
	}
	if n := hub.installs.Load(); n != 1 {
		t.Fatalf("install.sh fetched %d times, want 1", n)
	}

	// The next machine takes the next free host; then there is none.
	m2, err := p.Create(ctx, request(hub, t, "m-2", h1.Addr, h2.Addr))
	if err != nil || m2.ProviderID != h2.Addr {
		t.Fatalf("create m-2: %+v %v, want it on %s", m2, err, h2.Addr)
	}
	_, err = p.Create(ctx, request(hub, t, "m-3", h1.Addr, h2.Addr))
	wantKind(t, "create with no free host", err, providers.KindQuota)
	_, err = p.Create(ctx, request(hub, t, "m-3", h1.Addr, h2.Addr, dead))
	wantKind(t, "create with no free host but one down", err, providers.KindUnavailable)

	list, err := p.List(ctx, "c1")
	slices.SortFunc(list, func(a, b providers.Machine) int { return strings.Compare(a.MachineID, b.MachineID) })
	if err != nil || len(list) != 2 || list[0].MachineID != "m-1" || list[1].MachineID != "m-2" || list[0].ProviderID != h1.Addr {
		t.Fatalf("list c1: %+v %v", list, err)
	}
	if d, err := p.Describe(ctx, h2.Addr); err != nil || d.State != providers.StateRunning || d.MachineID != "m-2" {
		t.Fatalf("describe h2: %+v %v", d, err)
	}

	// Delete uninstalls: the loop and agent stop, the files go; twice is fine.
	loop, _ := os.ReadFile(filepath.Join(h1.Root, "var/lib/wharf-agent/agent.pid"))
	loopPID, _ := strconv.Atoi(strings.TrimSpace(string(loop)))
	if loopPID <= 1 {
		t.Fatalf("no restart loop PID on h1: %q", loop)
	}
	for i := 0; i < 2; i++ {
		if err := p.Delete(ctx, h1.Addr); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	waitFor(t, "the agent's loop to end", func() bool { return !alive(loopPID) })
	for _, f := range []string{"var/lib/wharf-agent", "usr/local/bin/wharf", "usr/local/bin/wharf-agent-uninstall"} {
		if h1.exists(f) {
			t.Errorf("%s is still on h1 after delete", f)
		}
	}
	if d, err := p.Describe(ctx, h1.Addr); err != nil || d.State != providers.StateGone {
		t.Fatalf("describe h1 after delete: %+v %v", d, err)
	}

	// The freed host takes the next machine.
	m3, err := p.Create(ctx, request(hub, t, "m-3", h1.Addr, h2.Addr))
	if err != nil || m3.ProviderID != h1.Addr {
		t.Fatalf("create m-3: %+v %v, want it on the freed %s", m3, err, h1.Addr)
	}
	for _, h := range []string{h1.Addr, h2.Addr} {
		if err := p.Delete(ctx, h); err != nil {
			t.Fatalf("delete %s: %v", h, err)
		}
	}
}

func TestHostKeyRefused(t *testing.T) {
	ctx := context.Background()
	client, key := newKey(t)
	other, _ := newKey(t)
	h := startSSHD(t, client.PublicKey())
	hub := startHub(t, true)
	for name, pins := range map[string]map[string]string{
		"mismatch": {h.Addr: ssh.FingerprintSHA256(other.PublicKey())},
		"unpinned": {"127.0.0.1:1": h.Fingerprint},
	} {
		t.Run(name, func(t *testing.T) {
			p := newProvider(t, account(key, pins))
			_, err := p.Create(ctx, request(hub, t, "m-1", h.Addr))
			wantKind(t, "create", err, providers.KindHostKey)
			if name == "mismatch" && !(strings.Contains(err.Error(), h.Fingerprint) && strings.Contains(err.Error(), h.ECDSA)) {
				t.Errorf("the refusal does not name the keys the host presented: %v", err)
			}
			if providers.Retryable(err) {
				t.Fatal("a host key refusal is retryable; it needs an admin")
			}
			_, err = p.Describe(ctx, h.Addr)
			wantKind(t, "describe", err, providers.KindHostKey)
			wantKind(t, "delete", p.Delete(ctx, h.Addr), providers.KindHostKey)
			// Nothing ran there: no marker, no download.
			if h.exists("var/lib/wharf-agent") || h.exists("usr") {
				t.Fatal("something was written on a host whose key was refused")
			}
			if n := hub.installs.Load(); n != 0 {
				t.Fatalf("install.sh was fetched %d times", n)
			}
		})
	}
	// A whole `ssh-keygen -lf` line is a pin too, and any of the host's
	// keys may be the pinned one (the ECDSA key is not the one a first
	// handshake is offered).
	for _, pin := range []string{"256 " + h.Fingerprint + " root@host (ED25519)", h.ECDSA} {
		p := newProvider(t, account(key, map[string]string{h.Addr: pin}))
		for i := 0; i < 2; i++ { // the second time from the remembered key type
			if d, err := p.Describe(ctx, h.Addr); err != nil || d.State != providers.StateGone {
				t.Fatalf("describe with pin %q: %+v %v", pin, d, err)
			}
		}
	}
}

func TestUnreachableHost(t *testing.T) {
	ctx := context.Background()
	client, key := newKey(t)
	h := startSSHD(t, client.PublicKey())
	hub := startHub(t, true)
	// Chosen after every listener of the test is up, so none of them gets it.
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := newProvider(t, account(key, map[string]string{dead: "SHA256:" + strings.Repeat("A", 43)}))
	_, err := p.Create(ctx, request(hub, t, "m-1", dead))
	wantKind(t, "create", err, providers.KindUnavailable)
	_, err = p.Describe(ctx, dead)
	wantKind(t, "describe", err, providers.KindUnavailable)
	wantKind(t, "delete", p.Delete(ctx, dead), providers.KindUnavailable)
	_, err = p.List(ctx, "c1")
	wantKind(t, "list with its only host unreachable", err, providers.KindUnavailable)

	// A host where this machine's install began (its answer lost) is waited
	// for, not passed over for another.
	p = newProvider(t, account(key, map[string]string{dead: "SHA256:" + strings.Repeat("A", 43), h.Addr: h.Fingerprint}))
	p.installs["m-2"] = dead
	_, err = p.Create(ctx, request(hub, t, "m-2", dead, h.Addr))
	wantKind(t, "create of a machine begun on a host now down", err, providers.KindUnavailable)
	if h.exists("var/lib/wharf-agent") || hub.installs.Load() != 0 {
		t.Fatal("the machine was installed on another host")
	}
}

func TestBadCredentials(t *testing.T) {
	ctx := context.Background()
	client, _ := newKey(t)
	_, wrong := newKey(t)
	h := startSSHD(t, client.PublicKey())
	hub := startHub(t, true)
	p := newProvider(t, account(wrong, map[string]string{h.Addr: h.Fingerprint}))
	// Check reads no host: a well-formed key passes it (the conformance
	// suite checks that a create with a key the hosts refuse fails).
	if err := p.Check(ctx); err != nil {
		t.Fatalf("check of a well-formed key: %v", err)
	}

	const secret = "c2VjcmV0LWtleS1tYXRlcmlhbA"
	for name, creds := range map[string]providers.Credentials{
		"garbage key": {User: "root", PrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\n" + secret + "\n-----END OPENSSH PRIVATE KEY-----\n", HostKeyFingerprints: map[string]string{h.Addr: h.Fingerprint}},
		"no user":     {PrivateKey: string(wrong), HostKeyFingerprints: map[string]string{h.Addr: h.Fingerprint}},
		"bad pin":     {User: "root", PrivateKey: string(wrong), HostKeyFingerprints: map[string]string{h.Addr: "MD5:aa:bb"}},
		"pin no port": {User: "root", PrivateKey: string(wrong), HostKeyFingerprints: map[string]string{"10.0.0.1": h.Fingerprint}},
	} {
		t.Run(name, func(t *testing.T) {
			p := newProvider(t, providers.Account{Type: "ssh", Credentials: creds})
			err := p.Check(ctx)
			wantKind(t, "check", err, providers.KindBadCredentials)
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error quotes the key: %v", err)
			}
			_, err = p.Create(ctx, request(hub, t, "m-1", h.Addr))
			wantKind(t, "create", err, providers.KindBadCredentials)
		})
	}
}

func TestFailedInstallReportsStderrAndFreesTheHost(t *testing.T) {
	ctx := context.Background()
	client, key := newKey(t)
	h := startSSHD(t, client.PublicKey())
	stopAgentsOnCleanup(t, h)
	hub := startHub(t, false) // install.sh, but no binary to download
	p := newProvider(t, account(key, map[string]string{h.Addr: h.Fingerprint}))
	_, err := p.Create(ctx, request(hub, t, "m-1", h.Addr))
	var pe *providers.Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "download of wharf-linux-"+runtime.GOARCH) || !strings.HasPrefix(pe.Code, "exit ") {
		t.Fatalf("create with a failing install: %v, want an *Error with the install's stderr", err)
	}
	if strings.Contains(err.Error(), "WJ1.") {
		t.Fatalf("the error quotes the join token: %v", err)
	}
	if h.exists("var/lib/wharf-agent") {
		t.Fatal("the failed install left the host taken")
	}
	if d, err := p.Describe(ctx, h.Addr); err != nil || d.State != providers.StateGone {
		t.Fatalf("describe after a failed install: %+v %v", d, err)
	}
}

func TestOpenByType(t *testing.T) {
	_, key := newKey(t)
	p, err := providers.Open(account(key, map[string]string{"10.0.0.1:22": "SHA256:" + strings.Repeat("A", 43)}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	if _, ok, err := p.Shape(context.Background(), providers.Template{Hosts: []string{"10.0.0.1:22"}}); ok || err != nil {
		t.Fatalf("shape: %v %v, want unknown", ok, err)
	}
}

func TestInstallScript(t *testing.T) {
	for name, tc := range map[string]struct {
		data, want, err string
	}{
		"argv":       {"#cloud-config\nruncmd:\n- [sh, -c, \"echo 'a b'\"]\n", "set -e\n'sh' '-c' 'echo '\\''a b'\\'''\n", ""},
		"string":     {"#cloud-config\nruncmd:\n- echo hi\n- [echo, ho]\n", "set -e\necho hi\n'echo' 'ho'\n", ""},
		"script":     {"#!/bin/sh\necho hi\n", "#!/bin/sh\necho hi\n", ""},
		"no runcmd":  {"#cloud-config\npackages: [curl]\n", "", "no runcmd"},
		"empty":      {"", "", "no user data"},
		"other":      {"hello", "", "neither"},
		"bad entry":  {"#cloud-config\nruncmd:\n- {a: b}\n", "", "entry 1"},
		"empty argv": {"#cloud-config\nruncmd:\n- []\n", "", "entry 1"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := installScript([]byte(tc.data))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	fp := "SHA256:" + strings.Repeat("x", 43)
	for in, want := range map[string]string{
		fp:                               fp,
		fp + "=":                         fp,
		"256 " + fp + " c@h (ED25519)":   fp,
		"SHA256:short":                   "",
		"MD5:12:34":                      "",
		"":                               "",
		"3072 " + fp + " root@h (RSA) x": fp,
	} {
		got, ok := normalizeFingerprint(in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}

// alive reports whether pid runs; a zombie (an orphan its new parent has
// not reaped yet) does not.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b) // pid (comm) STATE ...; comm may hold spaces
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCreateSkipsHandInstalledHostsAndResumesItsOwn(t *testing.T) {
	ctx := context.Background()
	client, key := newKey(t)
	h1, h2, h3 := startSSHD(t, client.PublicKey()), startSSHD(t, client.PublicKey()), startSSHD(t, client.PublicKey())
	for _, h := range []*sshd{h1, h2, h3} {
		stopAgentsOnCleanup(t, h)
	}
	hub := startHub(t, true)
	p := newProvider(t, account(key, map[string]string{h1.Addr: h1.Fingerprint, h2.Addr: h2.Fingerprint, h3.Addr: h3.Fingerprint}))

	// h1 runs an agent installed by hand: never taken over.
	if err := os.MkdirAll(filepath.Join(h1.Root, "var/lib/wharf-agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	// h3 was taken for m-9 by a create whose install never finished.
	if err := os.MkdirAll(filepath.Join(h3.Root, "var/lib/wharf-agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	tags := "wharf-cluster=c1\nwharf-machine=m-9\nwharf-pool=metal\n"
	if err := os.WriteFile(filepath.Join(h3.Root, "var/lib/wharf-agent/wharf-machine.tags"), []byte(tags), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := p.Describe(ctx, h3.Addr); err != nil || d.State != providers.StatePending || d.MachineID != "m-9" {
		t.Fatalf("describe of a host being installed: %+v %v", d, err)
	}

	m, err := p.Create(ctx, request(hub, t, "m-1", h1.Addr, h2.Addr, h3.Addr))
	if err != nil || m.ProviderID != h2.Addr {
		t.Fatalf("create m-1: %+v %v, want it on %s (h1 has an agent of its own, h3 is m-9's)", m, err, h2.Addr)
	}
	if h1.exists("usr") {
		t.Fatal("the hand-installed host was touched")
	}
	// A retry of m-9 finishes its install where it began, though h2 comes first.
	m, err = p.Create(ctx, request(hub, t, "m-9", h2.Addr, h3.Addr))
	if err != nil || m.ProviderID != h3.Addr || m.State != providers.StateRunning {
		t.Fatalf("create m-9: %+v %v, want it running on %s", m, err, h3.Addr)
	}
	for _, h := range []string{h2.Addr, h3.Addr} {
		if err := p.Delete(ctx, h); err != nil {
			t.Fatalf("delete %s: %v", h, err)
		}
	}
	if err := p.Delete(ctx, h1.Addr); err != nil || !h1.exists("var/lib/wharf-agent") {
		t.Fatalf("delete of the hand-installed host: %v; it must stay as it is", err)
	}
}

func TestConcurrentCreatesTakeDifferentHosts(t *testing.T) {
	ctx := context.Background()
	client, key := newKey(t)
	h1, h2 := startSSHD(t, client.PublicKey()), startSSHD(t, client.PublicKey())
	stopAgentsOnCleanup(t, h1)
	stopAgentsOnCleanup(t, h2)
	hub := startHub(t, true)
	acct := account(key, map[string]string{h1.Addr: h1.Fingerprint, h2.Addr: h2.Fingerprint})
	// Two providers, as two hub processes would have: only the hosts
	// themselves can keep them apart.
	ps := []*Provider{newProvider(t, acct), newProvider(t, acct)}
	got := make([]providers.Machine, 2)
	errs := make([]error, 2)
	reqs := []providers.CreateRequest{request(hub, t, "m-0", h1.Addr, h2.Addr), request(hub, t, "m-1", h1.Addr, h2.Addr)}
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = ps[i].Create(ctx, reqs[i])
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || got[0].ProviderID == got[1].ProviderID {
		t.Fatalf("concurrent creates: %+v %v / %+v %v, want two hosts", got[0], errs[0], got[1], errs[1])
	}
	for i := range ps {
		// A host lost to the other create is not where this machine began.
		if b := ps[i].began(reqs[i].MachineID); b != got[i].ProviderID {
			t.Errorf("provider %d remembers machine %s begun on %s, want %s", i, reqs[i].MachineID, b, got[i].ProviderID)
		}
	}
	for _, h := range []string{h1.Addr, h2.Addr} {
		if err := ps[0].Delete(ctx, h); err != nil {
			t.Fatalf("delete %s: %v", h, err)
		}
	}
}

func TestInstallTimeoutFreesTheHost(t *testing.T) {
	ctx := context.Background()
	client, key := newKey(t)
	h := startSSHD(t, client.PublicKey())
	p, err := New(account(key, map[string]string{h.Addr: h.Fingerprint}), Options{DialTimeout: 5 * time.Second, InstallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	req := providers.CreateRequest{MachineID: "m-1", Cluster: "c1", Template: providers.Template{Hosts: []string{h.Addr}},
		UserData: []byte("#!/bin/sh\nsleep 6\n")}
	start := time.Now()
	_, err = p.Create(ctx, req)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUnavailable || pe.Code != "timeout" {
		t.Fatalf("create with a hanging install: %v, want unavailable/timeout", err)
	}
	// Well before the install would have ended (a loaded machine may take
	// seconds for the SSH handshakes and the cleanup).
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("create returned after %v; the install timeout is 1 s", d)
	}
	if h.exists("var/lib/wharf-agent") {
		t.Fatal("the host stays taken after the install timed out")
	}
	time.Sleep(time.Until(start.Add(7 * time.Second))) // the abandoned install ends on the host and must not take it again
	if h.exists("var/lib/wharf-agent") {
		t.Fatal("the abandoned install took the host again when it ended")
	}
}
