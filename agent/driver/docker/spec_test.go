package docker

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/wharf-platform/wharf/agent/driver"
)

func TestLabelsAndFilter(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string]string
		spec  driver.Spec
		want  map[string]string
	}{
		{
			name: "with ports",
			spec: driver.Spec{InstanceID: "i-1", Tenant: "acme", App: "web", Version: 3,
				Ports: []driver.Port{{ContainerPort: 8080}, {ContainerPort: 53, Protocol: "UDP"}}},
			want: map[string]string{LabelInstance: "i-1", LabelTenant: "acme", LabelApp: "web",
				LabelHost: "h-1", LabelVersion: "3", LabelPort: "8080/tcp"},
		},
		{
			name: "no ports",
			spec: driver.Spec{InstanceID: "i-2", Tenant: "t", App: "worker", Version: 1},
			want: map[string]string{LabelInstance: "i-2", LabelTenant: "t", LabelApp: "worker",
				LabelHost: "h-1", LabelVersion: "1"},
		},
		{
			name:  "extra labels, wharf's win",
			extra: map[string]string{"wharf.dev": "/srv/wharf-data", LabelHost: "forged"},
			spec:  driver.Spec{InstanceID: "i-3", Tenant: "t", App: "web", Version: 2},
			want: map[string]string{"wharf.dev": "/srv/wharf-data", LabelInstance: "i-3", LabelTenant: "t",
				LabelApp: "web", LabelHost: "h-1", LabelVersion: "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := labels("h-1", tt.extra, tt.spec); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("labels = %v, want %v", got, tt.want)
			}
		})
	}
	b, _ := json.Marshal(hostFilter("h-1"))
	if string(b) != `{"label":{"wharf.host=h-1":true}}` {
		t.Errorf("filter %s", b)
	}
	if containerName("i-1") != "wharf-i-1" {
		t.Error(containerName("i-1"))
	}
}

func TestResources(t *testing.T) {
	tests := []struct {
		millis, mb int
		nano, mem  int64
	}{
		{0, 0, 0, 0},
		{1, 1, 1_000_000, 1 << 20},
		{250, 64, 250_000_000, 64 << 20},
		{1000, 1024, 1_000_000_000, 1 << 30},
		{4500, 16384, 4_500_000_000, 16 << 30},
	}
	for _, tt := range tests {
		if got := nanoCPUs(tt.millis); got != tt.nano {
			t.Errorf("nanoCPUs(%d) = %d, want %d", tt.millis, got, tt.nano)
		}
		if got := memoryBytes(tt.mb); got != tt.mem {
			t.Errorf("memoryBytes(%d) = %d, want %d", tt.mb, got, tt.mem)
		}
	}
}

func TestEnvAndPorts(t *testing.T) {
	spec := driver.Spec{
		Env:   map[string]string{"B": "2", "A": "1", "PORT": "ignored"},
		Ports: []driver.Port{{ContainerPort: 8080}, {ContainerPort: 9090, HostPort: 19090, Protocol: "tcp"}},
	}
	if got, want := env(spec), []string{"A=1", "B=2", "PORT=8080"}; !reflect.DeepEqual(got, want) {
		t.Errorf("env = %v, want %v", got, want)
	}
	ip := netip.MustParseAddr("127.0.0.1")
	set, bind, err := ports(spec, ip)
	if err != nil {
		t.Fatal(err)
	}
	p8080, p9090 := network.MustParsePort("8080/tcp"), network.MustParsePort("9090/tcp")
	if len(set) != 2 {
		t.Errorf("exposed %v", set)
	}
	if got := bind[p8080]; len(got) != 1 || got[0].HostIP != ip || got[0].HostPort != "" {
		t.Errorf("8080 bound to %v, want an ephemeral port on %s", got, ip)
	}
	if got := bind[p9090]; len(got) != 1 || got[0].HostPort != "19090" {
		t.Errorf("9090 bound to %v, want 19090", got)
	}
	if _, _, err := ports(driver.Spec{Ports: []driver.Port{{ContainerPort: 0}}}, ip); err == nil {
		t.Error("port 0 accepted")
	}
}

func TestStatus(t *testing.T) {
	started := "2026-05-07T21:09:36.123456789Z"
	c := container.InspectResponse{
		Config: &container.Config{Labels: map[string]string{
			LabelInstance: "i-1", LabelTenant: "acme", LabelApp: "web", LabelVersion: "2", LabelPort: "8080/tcp",
		}},
		State: &container.State{Status: container.StateRunning, StartedAt: started, FinishedAt: "0001-01-01T00:00:00Z"},
		NetworkSettings: &container.NetworkSettings{Ports: network.PortMap{
			network.MustParsePort("8080/tcp"): {
				{HostIP: netip.MustParseAddr("::"), HostPort: "49154"},
				{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "49153"},
			},
			network.MustParsePort("9090/tcp"): {{HostIP: netip.MustParseAddr("10.0.0.5"), HostPort: "49155"}},
			network.MustParsePort("7070/tcp"): nil, // exposed by the image, not published
		}},
	}
	st := status(c)
	want := driver.Status{
		InstanceID: "i-1", Tenant: "acme", App: "web", Version: 2, State: driver.StateRunning,
		StartedAt: time.Date(2026, 5, 7, 21, 9, 36, 123456789, time.UTC),
		Ports:     map[int]int{8080: 49153, 9090: 49155},
		Address:   "127.0.0.1:49153",
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("status = %+v\nwant %+v", st, want)
	}

	for _, tt := range []struct {
		in   container.ContainerState
		want driver.State
	}{
		{container.StateCreated, driver.StateCreated},
		{container.StateRunning, driver.StateRunning},
		{container.StatePaused, driver.StateRunning},
		{container.StateRestarting, driver.StateRunning},
		{container.StateExited, driver.StateExited},
		{container.StateDead, driver.StateExited},
		{container.StateRemoving, driver.StateExited},
	} {
		if got := state(tt.in); got != tt.want {
			t.Errorf("state(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}

	c.State = &container.State{Status: container.StateExited, ExitCode: 3, StartedAt: started, FinishedAt: "2026-05-07T21:10:00Z"}
	if st := status(c); st.State != driver.StateExited || st.ExitCode != 3 || st.FinishedAt.IsZero() || st.Address != "" || st.Ports != nil {
		t.Errorf("exited status = %+v", st)
	}
}

// frame builds one stdcopy frame the way the daemon sends it.
func frame(stream byte, payload string) []byte {
	h := []byte{stream, 0, 0, 0, 0, 0, 0, 0}
	n := len(payload)
	h[4], h[5], h[6], h[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return append(h, payload...)
}

func TestLogFrames(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame(1, "2026-05-07T21:09:36.000000001Z hello\n"))
	in.Write(frame(2, "2026-05-07T21:09:36.000000002Z oops\r\n"))
	in.Write(frame(1, "2026-05-07T21:09:36.000000003Z long "))      // a long line, split by the daemon
	in.Write(frame(1, "2026-05-07T21:09:36.000000004Z line\n"))     // ... continued
	in.Write(frame(1, "2026-05-07T21:09:36.000000005Z \n"))         // an empty line
	in.Write(frame(2, "2026-05-07T21:09:36.000000006Z no newline")) // the stream ends mid-line
	var got []driver.LogLine
	out := &lineWriter{stream: "stdout", fn: func(l driver.LogLine) error { got = append(got, l); return nil }}
	errw := &lineWriter{stream: "stderr", fn: out.fn}
	if err := copyFrames(out, errw, &in); err != nil {
		t.Fatal(err)
	}
	ts := func(ns int) time.Time { return time.Date(2026, 5, 7, 21, 9, 36, ns, time.UTC) }
	want := []driver.LogLine{
		{Time: ts(1), Stream: "stdout", Line: "hello"},
		{Time: ts(2), Stream: "stderr", Line: "oops"},
		{Time: ts(3), Stream: "stdout", Line: "long line"},
		{Time: ts(5), Stream: "stdout", Line: ""},
		{Time: ts(6), Stream: "stderr", Line: "no newline"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines\n%+v\nwant\n%+v", got, want)
	}
}
