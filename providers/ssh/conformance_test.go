package ssh

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/e2e/cloudsim"
	"github.com/wharf-platform/wharf/providers"
	"github.com/wharf-platform/wharf/providers/providertest"
)

// conformanceHosts is how many real sshd hosts one cloud of the suite
// has: three machines and a host with an agent installed by hand.
const conformanceHosts = 4

// TestConformance runs the provider suite against real OpenSSH servers
// on loopback: the hosts are the cloud, their disks what it holds.
func TestConformance(t *testing.T) {
	requireSSHD(t)
	providertest.Run(t, providertest.Harness{New: func(t *testing.T) *providertest.Cloud {
		client, key := newKey(t)
		_, wrongKey := newKey(t)
		hosts := make([]*sshd, conformanceHosts)
		pins := map[string]string{}
		var addrs []string
		for i := range hosts {
			hosts[i] = startSSHD(t, client.PublicKey())
			stopAgentsOnCleanup(t, hosts[i])
			pins[hosts[i].Addr] = hosts[i].Fingerprint
			addrs = append(addrs, hosts[i].Addr)
		}
		tmpl := providers.Template{Hosts: addrs}
		// Hosts taken by hand (the quota's), to give back on Clear.
		var byHand []string
		takeByHand := func(t testing.TB, h *sshd) {
			dir := filepath.Join(h.Root, "var/lib/wharf-agent")
			if _, err := os.Stat(dir); err == nil {
				return
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			byHand = append(byHand, dir)
		}
		return &providertest.Cloud{
			Provider:            newProvider(t, account(key, pins)),
			BadCredentials:      newProvider(t, account(wrongKey, pins)),
			BadCredentialsWords: "refused user root",
			Template:            tmpl,
			Held: func(t testing.TB) []providertest.Held {
				var out []providertest.Held
				for _, h := range hosts {
					if tags := hostTags(t, h); tags[providers.TagMachine] != "" {
						out = append(out, providertest.Held{ProviderID: h.Addr, MachineID: tags[providers.TagMachine], Tags: tags})
					}
				}
				return out
			},
			MissingID: hosts[conformanceHosts-1].Addr, // pinned, holding nothing
			// An SSH account's quota is its hosts: with every one taken,
			// there is no room for another machine.
			Fail: func(kind cloudsim.FaultKind) providertest.Words {
				if kind != cloudsim.FaultQuota {
					t.Fatalf("no %s fault over real sshd", kind)
				}
				for _, h := range hosts {
					takeByHand(t, h)
				}
				return providertest.Words{Code: "no_free_host", Message: "already hold a wharf agent"}
			},
			Clear: func() {
				for _, dir := range byHand {
					os.RemoveAll(dir)
				}
				byHand = nil
			},
			AddUntagged: func(t testing.TB) { takeByHand(t, hosts[conformanceHosts-1]) },
			Hang: func(t testing.TB) (providers.Provider, providers.Template) {
				addr := blackhole(t)
				p, err := New(account(key, map[string]string{addr: hosts[0].Fingerprint}), Options{DialTimeout: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				return p, providers.Template{Hosts: []string{addr}}
			},
		}
	}, NotApplicable: map[string]string{
		providertest.CheckLostAnswer:      "a real sshd cannot lose an answer on demand; TestCreateSkipsHandInstalledHostsAndResumesItsOwn resumes an install whose answer was lost",
		providertest.CheckDescribeMissing: "a pinned host always exists: one holding no machine is described as gone, an unpinned one is a host key refusal",
		providertest.CheckUserData:        "the host runs the user data's runcmd and keeps nothing of it; TestCreateDescribeListDelete checks what the install ran with",
		providertest.CheckRefusedAuth:     "sshd refuses a key at login only (see BadCredentials); it has no per-call permissions",
		providertest.CheckThrottled:       "SSH has no API rate limit",
		providertest.CheckServerFailure:   "sshd has no server error to inject; an unreachable host is TestUnreachableHost",
		providertest.CheckUnknownTemplate: "an SSH template is a list of hosts: an unknown one is a host key refusal (TestHostKeyRefused)",
	}})
}

// hostTags reads the tags a create wrote on h (none when it holds no
// machine).
func hostTags(t testing.TB, h *sshd) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Root, "var/lib/wharf-agent/wharf-machine.tags"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			tags[k] = v
		}
	}
	return tags
}

// blackhole is a loopback address that accepts connections and never
// says a word on them.
func blackhole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
