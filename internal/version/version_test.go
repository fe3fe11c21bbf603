package version

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/wharf-platform/wharf", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/wharf-platform/wharf", Version: "v1.4.0"}}
	tests := []struct {
		name          string
		stamp, stampC string
		bi            *debug.BuildInfo
		want          Info
	}{
		{"stamped version, commit from VCS", "v1.2.3", "", vcs("0123456789abcdef0123", "false"),
			Info{Version: "v1.2.3", Commit: "0123456789ab", GoVersion: "go1.26.8"}},
		{"both stamped win over VCS", "v1.2.3", "feedface", vcs("0123456789abcdef0123", "true"),
			Info{Version: "v1.2.3", Commit: "feedface", GoVersion: "go1.26.8"}},
		{"unstamped checkout build", "", "", vcs("0123456789abcdef0123", "true"),
			Info{Version: Dev, Commit: "0123456789ab", Modified: true, GoVersion: "go1.26.8"}},
		{"go install module@version", "", "", installed, Info{Version: "v1.4.0", GoVersion: "go1.26.8"}},
		{"no build info", "", "", nil, Info{Version: Dev, GoVersion: resolve("", "", nil).GoVersion}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolve(tt.stamp, tt.stampC, tt.bi); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in   Info
		want string
	}{
		{Info{Version: "v1.2.3", Commit: "0123abcd", GoVersion: "go1.26.8"}, "v1.2.3 (0123abcd, go1.26.8)"},
		{Info{Version: Dev, Commit: "0123abcd", Modified: true, GoVersion: "go1.26.8"}, "dev (0123abcd, modified, go1.26.8)"},
		{Info{Version: Dev, GoVersion: "go1.26.8"}, "dev (unknown commit, go1.26.8)"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// TestMakefileStamp builds a small program with the Makefile's own LDFLAGS
// and checks that the version it stamps is the one Get reports.
func TestMakefileStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LDFLAGS\s*:=\s*(.+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no LDFLAGS := line")
	}
	const want = "v9.8.7-test"
	ldflags := strings.ReplaceAll(string(m[1]), "$(VERSION)", want)
	if strings.Contains(ldflags, "$(") {
		t.Fatalf("LDFLAGS uses a variable this test does not know: %s", ldflags)
	}
	bin := filepath.Join(t.TempDir(), "stamped")
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "./testdata/stamped")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("a build with the Makefile's LDFLAGS reports %q, want %q", got, want)
	}
}
