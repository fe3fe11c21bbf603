package installer

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// deadURL is an http URL on loopback where nothing listens.
func deadURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// runcmd parses a cloud-config document back and returns its runcmd.
func runcmd(t testing.TB, doc []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(doc, []byte("#cloud-config\n")) {
		t.Fatalf("not a cloud-config document:\n%s", doc)
	}
	var cc struct {
		RunCmd [][]string `json:"runcmd"`
	}
	if err := yaml.UnmarshalStrict(doc, &cc); err != nil {
		t.Fatalf("parse cloud-config: %v\n%s", err, doc)
	}
	return cc.RunCmd
}

func TestCloudConfigInstallsFromTheFirstHubThatAnswers(t *testing.T) {
	srv, fa := testHub(t, []string{"10.1.0.1:7481"})
	j := Join{
		HubURLs:   []string{deadURL(t), srv.URL + "/"},
		Gateways:  []string{"10.1.0.1:7481", "10.2.0.1:7481"},
		JoinToken: "WJ1.tok-en_1.x+y/z=",
		MachineID: "m-0042",
		Pool:      "metal",
		Name:      "rack1-u7",
	}
	doc, err := CloudConfig(j)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := CloudConfig(j)
	if !bytes.Equal(doc, again) {
		t.Fatal("two renders of one Join differ: a retried create would carry other user data")
	}
	cmds := runcmd(t, doc)
	want, _ := InstallCommand(j)
	if len(cmds) != 1 || len(cmds[0]) != 3 || cmds[0][0] != "sh" || cmds[0][1] != "-c" || cmds[0][2] != want {
		t.Fatalf("runcmd %q, want [[sh -c InstallCommand]]", cmds)
	}

	// Run the runcmd as cloud-init would (an argv), into a test root.
	root := filepath.Join(t.TempDir(), "root")
	data := filepath.Join(root, "var/lib/wharf-agent")
	cmd := exec.Command(cmds[0][0], cmds[0][1:]...)
	cmd.Env = append(os.Environ(), "WHARF_ROOT="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runcmd: %v\n%s", err, out)
	}
	killGroupOnCleanup(t, filepath.Join(data, "agent.pid"))
	waitFor(t, "the agent to start", func() bool { return len(fa.runs()) == 1 })
	wantArgs := "agent --data-dir " + data + " --token WJ1.tok-en_1.x+y/z= --hub 10.1.0.1:7481 --hub 10.2.0.1:7481 --name rack1-u7 --pool metal --machine-id m-0042"
	if got := fa.runs()[0]; got != wantArgs {
		t.Fatalf("agent args\n got %s\nwant %s", got, wantArgs)
	}
	if id, _ := os.ReadFile(filepath.Join(data, "machine-id")); string(id) != "m-0042\n" {
		t.Fatalf("machine-id %q", id)
	}
	if out, err := exec.Command(filepath.Join(root, "usr/local/bin/wharf-agent-uninstall")).CombinedOutput(); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
}

func TestInstallCommandGivesUpWhenNoHubAnswers(t *testing.T) {
	cmdline, err := InstallCommand(Join{HubURLs: []string{deadURL(t), deadURL(t)}, JoinToken: "WJ1.x", Rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Env = append(os.Environ(), "WHARF_ROOT="+root)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no hub served /install.sh") {
		t.Fatalf("install with no hub: %v\n%s", err, out)
	}
	if _, err := os.Stat(root); err == nil {
		t.Fatal("something was installed")
	}
}

func TestCloudConfigRefusesBadInput(t *testing.T) {
	good := Join{HubURLs: []string{"http://10.0.0.1:7480"}, JoinToken: "WJ1.secret-part", MachineID: "m-1", Pool: "p"}
	for name, tc := range map[string]struct {
		edit func(*Join)
		msg  string
	}{
		"no hub":        {func(j *Join) { j.HubURLs = nil }, "hub URL"},
		"hub not http":  {func(j *Join) { j.HubURLs = []string{"ftp://h:1"} }, "want http"},
		"hub injection": {func(j *Join) { j.HubURLs = []string{"http://h:1/$(reboot)"} }, "want http"},
		"no token":      {func(j *Join) { j.JoinToken = "" }, "not a Wharf join token"},
		"token quote":   {func(j *Join) { j.JoinToken = "WJ1.secret-part'; reboot; '" }, "not a Wharf join token"},
		"pool space":    {func(j *Join) { j.Pool = "a b" }, "pool"},
		"name newline":  {func(j *Join) { j.Name = "a\nruncmd: [reboot]" }, "name"},
		"machine dash":  {func(j *Join) { j.MachineID = "--root" }, "machine id"},
		"gateway comma": {func(j *Join) { j.Gateways = []string{"a:1,b:2"} }, "gateway"},
	} {
		t.Run(name, func(t *testing.T) {
			j := good
			tc.edit(&j)
			doc, err := CloudConfig(j)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CloudConfig: %v (%s), want an error with %q", err, doc, tc.msg)
			}
			if strings.Contains(err.Error(), "secret-part") {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
	if _, err := CloudConfig(good); err != nil {
		t.Fatalf("the good Join: %v", err)
	}
}
