package netboot

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/e2e/netlab"
)

func TestScript(t *testing.T) {
	for _, tc := range []struct {
		name, userData, want, err string
	}{
		{"runcmd strings and argv", "#cloud-config\nruncmd:\n  - echo one | tee /tmp/x\n  - [sh, -c, \"echo it's\"]\n",
			"#!/bin/sh\necho one | tee /tmp/x\n'sh' '-c' 'echo it'\\''s'\n", ""},
		{"no runcmd", "#cloud-config\npackages: [curl]\n", "#!/bin/sh\n", ""},
		{"a script", "#!/bin/bash\necho hi\n", "#!/bin/bash\necho hi\n", ""},
		{"neither", "echo hi\n", "", "neither"},
		{"bad yaml", "#cloud-config\nruncmd: [\n", "", "cloud-config"},
		{"bad item", "#cloud-config\nruncmd:\n  - {a: 1}\n", "", "item 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script([]byte(tc.userData))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("script %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestNewRefusesDirsMachinesOverlay(t *testing.T) {
	for _, dir := range []string{"", "/var/tmp/x", "/etc", "/usr/local/share/x"} {
		if _, err := New(nil, Options{Dir: dir}); err == nil {
			t.Errorf("dir %q accepted", dir)
		}
	}
}

// installScript is what a hub's /install.sh does, in small: install a
// binary and a unit, start the unit with systemctl.
const installScript = `set -eu
mkdir -p /usr/local/bin /etc/systemd/system /var/lib/fake
cat >/usr/local/bin/fake-agent <<'EOF'
#!/bin/sh
echo "token $1" >/var/lib/fake/args
ip -4 -o addr show dev eth0 >/var/lib/fake/addr.tmp
mv /var/lib/fake/addr.tmp /var/lib/fake/addr
exec sleep 300
EOF
chmod 0755 /usr/local/bin/fake-agent
printf '[Service]\nExecStart=/usr/local/bin/fake-agent %s\n' "$1" >/etc/systemd/system/fake-agent.service
systemctl daemon-reload
systemctl enable --now fake-agent.service
`

// serveInstall serves installScript on the datacenter's gateway, as a hub
// serves /install.sh to the machines it creates.
func serveInstall(t *testing.T, dc *netlab.DC) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(dc.Gateway().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/install.sh" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(installScript))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestBootRunsUserDataInItsOwnHost(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("cloud")
	hub := serveInstall(t, dc)
	b, err := New(dc, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const id = "i-0123456789abcdef0"
	userData := "#cloud-config\nruncmd:\n  - curl -sfL " + hub + "/install.sh | sh -s - WJ1.secret\n  - hostname >/var/lib/fake/hostname\n"
	ctx, terminate := context.WithCancel(context.Background())
	defer terminate()
	booted := make(chan error, 1)
	go func() { booted <- b.Boot(ctx, cloudsim.Instance{ID: id, UserData: []byte(userData)}) }()

	var m *Machine
	deadline := time.Now().Add(20 * time.Second)
	for m == nil {
		if time.Now().After(deadline) {
			t.Fatal("no machine booted")
		}
		m, _ = b.Machine(id)
		time.Sleep(10 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Wait(wctx); err != nil {
		t.Fatalf("runcmd: %v\n%s", err, m.Console())
	}
	// The unit's process runs in the machine's network namespace, with
	// the machine's address, and wrote to the machine's own disk.
	var addr []byte
	for addr == nil || len(addr) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the agent never wrote its address\n%s", m.Console())
		}
		addr, _ = os.ReadFile(m.Path("/var/lib/fake/addr"))
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(string(addr), m.Host.IP().String()+"/24") {
		t.Fatalf("the agent saw %q, want the host's %s", addr, m.Host.IP())
	}
	// The machine is named after its instance; this machine keeps its name.
	if name, _ := os.ReadFile(m.Path("/var/lib/fake/hostname")); string(name) != id+"\n" {
		t.Fatalf("the machine's host name is %q, want %s", name, id)
	}
	if own, _ := os.Hostname(); own == id {
		t.Fatal("the machine renamed this machine")
	}
	if args, _ := os.ReadFile(m.Path("/var/lib/fake/args")); string(args) != "token WJ1.secret\n" {
		t.Fatalf("agent args %q", args)
	}
	if unit, err := os.ReadFile(m.Path("/etc/systemd/system/fake-agent.service")); err != nil || !strings.Contains(string(unit), "ExecStart=/usr/local/bin/fake-agent WJ1.secret") {
		t.Fatalf("unit %q %v", unit, err)
	}
	for _, p := range []string{"/usr/local/bin/fake-agent", "/etc/systemd/system/fake-agent.service", "/var/lib/fake"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the machine wrote %s on this machine's disk (%v)", p, err)
		}
	}
	pidText, err := os.ReadFile(m.Path("/var/lib/netboot-systemctl/fake-agent.service.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("the service (pid %q) does not run: %v", pidText, err)
	}

	terminate()
	select {
	case err := <-booted:
		if err != nil {
			t.Fatalf("boot returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Boot did not return after its context ended")
	}
	if lab.Host(id) != nil {
		t.Fatal("the terminated machine's host is still in the lab")
	}
	// SIGKILLed; it may take a moment to leave (or stay a zombie until
	// init reaps it).
	for !gone(pid) {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("the service (pid %d) outlived its machine", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gone(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) STATE ...: comm may hold spaces, the state follows the last ')'.
	s := string(st)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestBootReportsFailedRuncmd(t *testing.T) {
	netlab.Require(t)
	lab := netlab.New(t, netlab.Options{})
	dc := lab.AddDC("cloud")
	b, err := New(dc, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, terminate := context.WithCancel(context.Background())
	booted := make(chan error, 1)
	go func() {
		booted <- b.Boot(ctx, cloudsim.Instance{ID: "i-00000000000000001", UserData: []byte("#cloud-config\nruncmd:\n  - echo about to fail\n  - exit 7\n")})
	}()
	var m *Machine
	for m == nil {
		m, _ = b.Machine("i-00000000000000001")
		time.Sleep(10 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Wait(wctx); err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("runcmd outcome %v", err)
	}
	if !strings.Contains(m.Console(), "about to fail") {
		t.Fatalf("console %q", m.Console())
	}
	terminate()
	if err := <-booted; err == nil {
		t.Fatal("Boot hid runcmd's failure")
	}
	// User data no boot understands fails at once, without a host.
	if err := b.Boot(context.Background(), cloudsim.Instance{ID: "i-00000000000000002", UserData: []byte("echo hi")}); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("boot of plain text: %v", err)
	}
	if lab.Host("i-00000000000000002") != nil {
		t.Fatal("a failed boot left a host")
	}
}

func TestHostName(t *testing.T) {
	for id, want := range map[string]string{
		"i-0123456789abcdef0":                  "i-0123456789abcdef0",
		"vm-42":                                "vm-42",
		"0B1C2D3E-0000-4000-8000-00000000000A": "0b1c2d3e00004000800000000000000a",
		"0b1c2d3e-0000-4000-8000-000000000001": "0b1c2d3e000040008000000000000001",
		"Web_Server":                           "webserver",
	} {
		if got := HostName(id); got != want {
			t.Errorf("%s → %s, want %s", id, got, want)
		}
	}
	long := HostName(strings.Repeat("x", 40))
	if len(long) > 32 || long == HostName(strings.Repeat("x", 41)) {
		t.Errorf("long ids: %s, %s", long, HostName(strings.Repeat("x", 41)))
	}
	if HostName("---") == "" || HostName("\u00e9") == "" {
		t.Error("an id of nothing a host name holds has no name")
	}
}
