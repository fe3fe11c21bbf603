package ssh

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

const sshdPath = "/usr/sbin/sshd"

// requireSSHD skips a test that needs a real OpenSSH server where there is
// none (or we are not root, which sshd needs to log a user in), and fails
// it instead when WHARF_REQUIRE_SSHD=1.
func requireSSHD(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := os.Stat(sshdPath); err != nil {
		why = sshdPath + " is missing (apt-get install openssh-server)"
	} else if os.Geteuid() != 0 {
		why = "sshd needs root"
	} else if _, err := exec.LookPath("curl"); err != nil {
		why = "curl is missing (the install downloads with it)"
	}
	if why == "" {
		return
	}
	if os.Getenv("WHARF_REQUIRE_SSHD") == "1" {
		t.Fatalf("WHARF_REQUIRE_SSHD=1 but %s", why)
	}
	t.Skip(why)
}

// key is a new ed25519 key pair as a signer and its PEM.
func newKey(t testing.TB) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

// sshd is one OpenSSH server of a test, on 127.0.0.1, with its own host
// key, authorized keys and install root (its sessions get WHARF_ROOT).
type sshd struct {
	Addr        string // 127.0.0.1:PORT
	Root        string // WHARF_ROOT of its sessions
	Fingerprint string // of its ed25519 host key, SHA256:...
	ECDSA       string // the fingerprint of its second host key, ECDSA P-256
	dir         string
}

// startSSHD runs `sshd -D -e` on loopback with a config of its own in a
// temp dir that lets authorized log in as root; it is stopped by its PID
// when the test ends.
func startSSHD(t testing.TB, authorized ...ssh.PublicKey) *sshd {
	t.Helper()
	requireSSHD(t)
	return launchSSHD(t, "127.0.0.1", freePort(t), func(cmd *exec.Cmd) error {
		if err := cmd.Start(); err != nil {
			return err
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		return nil
	}, exec.Command, authorized...)
}

// launchSSHD starts sshd listening on ip:port with command and start
// (which must see to stopping it).
func launchSSHD(t testing.TB, ip string, port int, start func(*exec.Cmd) error, command func(string, ...string) *exec.Cmd, authorized ...ssh.PublicKey) *sshd {
	t.Helper()
	// sshd refuses to start without its privilege separation directory,
	// which the Debian package leaves to the init system.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostSigner, hostPEM := newKey(t)
	if err := os.WriteFile(filepath.Join(dir, "host_key"), hostPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecBlock, err := ssh.MarshalPrivateKey(ecKey, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "host_key_ecdsa"), pem.EncodeToMemory(ecBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	ecPub, err := ssh.NewPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var auth strings.Builder
	for _, k := range authorized {
		auth.Write(ssh.MarshalAuthorizedKey(k))
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(auth.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &sshd{Root: filepath.Join(dir, "root"), Fingerprint: ssh.FingerprintSHA256(hostSigner.PublicKey()), ECDSA: ssh.FingerprintSHA256(ecPub), dir: dir}
	if err := os.MkdirAll(s.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Addr = net.JoinHostPort(ip, strconv.Itoa(port))
	cfg := strings.Join([]string{
		fmt.Sprintf("Port %d", port),
		"ListenAddress " + ip,
		"HostKey " + filepath.Join(dir, "host_key"),
		"HostKey " + filepath.Join(dir, "host_key_ecdsa"),
		"PidFile none",
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		// Debian's bash reads ~/.bashrc for commands run by sshd unless
		// it is a nested shell; this machine's can take seconds.
		"SetEnv WHARF_ROOT=" + s.Root + " SHLVL=1",
		"LogLevel INFO",
	}, "\n") + "\n"
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := command(sshdPath, "-D", "-e", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Logf("sshd %s log:\n%s", s.Addr, b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Fatalf("sshd on %s did not come up: %v\n%s", s.Addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exists reports whether path (below the sshd's install root) exists.
func (s *sshd) exists(path string) bool {
	_, err := os.Stat(filepath.Join(s.Root, path))
	return err == nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
