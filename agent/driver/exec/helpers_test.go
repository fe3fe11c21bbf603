package exec

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/agent/driver"
)

func TestCgroupLimits(t *testing.T) {
	tests := []struct {
		name              string
		millis, quota, mb int
		v2                bool
		want              map[string]map[string]string
	}{
		{"v1 unlimited", 0, 0, 0, false, map[string]map[string]string{
			"cpu":    {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024"},
			"memory": {"memory.limit_in_bytes": "-1"},
		}},
		{"v1 half a cpu, 128 MB", 500, 500, 128, false, map[string]map[string]string{
			"cpu":    {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000", "cpu.shares": "512"},
			"memory": {"memory.limit_in_bytes": "134217728"},
		}},
		{"v1 two cpus", 2000, 2000, 1, false, map[string]map[string]string{
			"cpu":    {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "200000", "cpu.shares": "2048"},
			"memory": {"memory.limit_in_bytes": "1048576"},
		}},
		{"v1 below the kernel's minimum quota", 5, 5, 0, false, map[string]map[string]string{
			"cpu":    {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "1000", "cpu.shares": "5"},
			"memory": {"memory.limit_in_bytes": "-1"},
		}},
		{"v1 booting: a tenth of a cpu weighed, a core of quota", 100, 1000, 0, false, map[string]map[string]string{
			"cpu":    {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000", "cpu.shares": "102"},
			"memory": {"memory.limit_in_bytes": "-1"},
		}},
		{"v2 unlimited", 0, 0, 0, true, map[string]map[string]string{
			"": {"cpu.max": "max 100000", "cpu.weight": "39", "memory.max": "max"},
		}},
		{"v2 quarter cpu, 64 MB", 250, 250, 64, true, map[string]map[string]string{
			"": {"cpu.max": "25000 100000", "cpu.weight": "10", "memory.max": "67108864"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cgroupLimits(tt.millis, tt.quota, tt.mb, tt.v2); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCgroupPaths(t *testing.T) {
	root := t.TempDir()
	for _, c := range []string{"cpu", "memory", "pids"} { // no cpuacct hierarchy
		if err := mkdir(filepath.Join(root, c)); err != nil {
			t.Fatal(err)
		}
	}
	got := cgroupPaths(root, "wharf", "h1", "i1", false)
	want := []string{root + "/cpu/wharf/h1/i1", root + "/memory/wharf/h1/i1", root + "/pids/wharf/h1/i1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v1 paths %v, want %v", got, want)
	}
	for i, c := range []string{"cpu", "memory", "pids"} {
		if got := controllerOf(root, want[i], false); got != c {
			t.Errorf("controllerOf(%s) = %q", want[i], got)
		}
	}
	if got := cgroupPaths(root, "wharf", "h1", "i1", true); !reflect.DeepEqual(got, []string{root + "/wharf/h1/i1"}) {
		t.Errorf("v2 paths %v", got)
	}
	// Writing limits into a fake v1 tree.
	if err := setupCgroup(root, want, 1500, 1500, 32); err != nil {
		t.Fatal(err)
	}
	for file, v := range map[string]string{
		"cpu/wharf/h1/i1/cpu.cfs_quota_us":         "150000",
		"memory/wharf/h1/i1/memory.limit_in_bytes": "33554432",
	} {
		if b, err := readFile(filepath.Join(root, file)); err != nil || b != v {
			t.Errorf("%s = %q (%v), want %s", file, b, err, v)
		}
	}
}

func TestParseStat(t *testing.T) {
	// ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime prio nice threads itreal START vsize
	tail := " 1 1 1 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000"
	tests := []struct {
		line  string
		state byte
		start uint64
		ok    bool
	}{
		{"42 (sleep) S" + tail, 'S', 123456, true},
		{"42 (a) b (c) Z" + tail, 'Z', 123456, true}, // a command name with ") " in it
		{"42 (x y) R" + tail, 'R', 123456, true},
		{"42 (sleep) S 1 1", 0, 0, false},
		{"garbage", 0, 0, false},
	}
	for _, tt := range tests {
		s, start, err := parseStat([]byte(tt.line))
		if (err == nil) != tt.ok || s != tt.state || start != tt.start {
			t.Errorf("parseStat(%q) = %c, %d, %v", tt.line, s, start, err)
		}
	}
}

func TestEnviron(t *testing.T) {
	spec := driver.Spec{
		InstanceID: "i-1",
		Env:        map[string]string{"PORT": "1", "HOSTNAME": "x", "A": "b=c", "PATH": "/opt/bin"},
		Ports:      []driver.Port{{Name: "http"}, {Name: "admin-api"}, {}},
	}
	got := environ(spec, []int{30001, 30002, 30003})
	want := []string{"A=b=c", "HOME=/", "HOSTNAME=i-1", "PATH=/opt/bin", "PORT=30001", "PORT_ADMIN_API=30002", "PORT_HTTP=30001"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environ = %v\nwant %v", got, want)
	}
}

func TestPorts(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	taken := l.Addr().(*net.TCPAddr).Port
	defer l.Close()

	spec := driver.Spec{Ports: []driver.Port{{ContainerPort: 8080}, {HostPort: 31000}, {}}}
	got, err := pickPorts(spec, []int{taken, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] == taken || got[0] == 0 || got[1] != 31000 || got[2] == 0 || got[2] == got[0] {
		t.Errorf("pickPorts = %v (%d was taken)", got, taken)
	}
	if m := ports(spec, got); !reflect.DeepEqual(m, map[int]int{8080: got[0], got[1]: got[1], got[2]: got[2]}) {
		t.Errorf("ports = %v", m)
	}
	if got, _ := pickPorts(driver.Spec{}, nil); len(got) != 1 || got[0] == 0 {
		t.Errorf("a spec without ports gets %v, want one port", got)
	}
}

func TestLogFiles(t *testing.T) {
	now := time.Date(2026, 5, 7, 21, 9, 36, 5, time.UTC)
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	var file bytes.Buffer
	long := strings.Repeat("x", maxLine+10)
	if err := copyLines(&file, strings.NewReader("one\r\n\ntwo\n"+long+"\nlast"), clock); err != nil {
		t.Fatal(err)
	}
	var lines []driver.LogLine
	for _, l := range strings.Split(strings.TrimSuffix(file.String(), "\n"), "\n") {
		lines = append(lines, parseLine([]byte(l), "stdout"))
	}
	var texts []string
	for i, l := range lines {
		texts = append(texts, l.Line)
		if l.Time.IsZero() || (i > 0 && l.Time.Before(lines[i-1].Time)) {
			t.Errorf("line %d at %v", i, l.Time)
		}
	}
	want := []string{"one", "", "two", long[:maxLine], long[maxLine:], "last"}
	if !reflect.DeepEqual(texts, want) {
		t.Errorf("lines %q...", texts[:3])
	}

	ts := func(ms int) time.Time { return time.Unix(0, int64(ms)*1e6) }
	a := []driver.LogLine{{Time: ts(1), Line: "a1"}, {Time: ts(3), Line: "a3"}, {Time: ts(3), Line: "a3b"}}
	b := []driver.LogLine{{Time: ts(2), Line: "b2"}, {Time: ts(3), Line: "b3"}, {Time: ts(9), Line: "b9"}}
	var merged []string
	for _, l := range mergeLines(a, b) {
		merged = append(merged, l.Line)
	}
	if want := []string{"a1", "b2", "a3", "a3b", "b3", "b9"}; !reflect.DeepEqual(merged, want) {
		t.Errorf("merged %v, want %v", merged, want)
	}
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"i-1": true, "abc": true, "a": true, strings.Repeat("a", 63): true,
		"": false, "../etc": false, "a/b": false, "A": false, "-a": false, "a-": false, strings.Repeat("a", 64): false,
	} {
		if got := validID(id) == nil; got != ok {
			t.Errorf("validID(%q) ok = %v, want %v", id, got, ok)
		}
	}
}

func mkdir(p string) error { return os.MkdirAll(p, 0o755) }

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

func TestParseStamp(t *testing.T) {
	for _, s := range []string{"2026-05-07T21:09:36.123456789Z", "2026-05-07T21:09:36Z", "2026-05-07T21:09:36.1Z", "2024-02-29T00:00:00.000001Z",
		"2026-05-07T21:09:36.123+02:00"} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseStamp([]byte(s))
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-05-07T21:09:36.Z", "x", "2026-05-07T2a:09:36Z"} {
		if _, err := parseStamp([]byte(s)); err == nil {
			t.Errorf("%s parsed", s)
		}
	}
}
