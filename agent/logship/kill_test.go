package logship

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wharf-platform/wharf/internal/killtest"
)

// killChildEnv names the directory a re-executed test binary appends to.
const killChildEnv = "WHARF_LOGSHIP_KILL_CHILD_DIR"

// killChild appends numbered lines until it is killed. After each Append
// returns it prints "line N" to stdout, after each Ack "ack N".
func killChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	b, err := Open(Config{Dir: dir, SegmentBytes: 4096})
	if err != nil {
		fail(err)
	}
	deadline := time.Now().Add(time.Minute) // never outlive a lost parent
	for i := uint64(1); time.Now().Before(deadline); i++ {
		if err := b.Append("inst", "stdout", fmt.Sprintf("line %d %s", i, strings.Repeat("x", int(i%97)))); err != nil {
			fail(err)
		}
		fmt.Printf("line %d\n", i)
		if i%500 == 0 {
			if err := b.Ack(map[string]uint64{"inst": i - 250}); err != nil {
				fail(err)
			}
			fmt.Printf("ack %d\n", i-250)
		}
	}
	os.Exit(3)
}

func TestKill9LosesNothingReturned(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	// Different kill points land in different phases (write, rotation,
	// ack persistence).
	for _, killAt := range []uint64{700, 2100, 3777} {
		t.Run(fmt.Sprint(killAt), func(t *testing.T) { killAndRecover(t, killAt) })
	}
}

func killAndRecover(t *testing.T, killAt uint64) {
	dir := t.TempDir()
	var lastLine, lastAck uint64
	killtest.Run(t, killChildEnv, dir, func(line string) bool {
		var n uint64
		if _, err := fmt.Sscanf(line, "line %d", &n); err == nil {
			lastLine = n
		} else if _, err := fmt.Sscanf(line, "ack %d", &n); err == nil {
			lastAck = n
		}
		return lastLine >= killAt
	})

	b := openT(t, testConfig(t, dir))
	lines := readAll(t, b)
	if len(lines) == 0 {
		t.Fatal("nothing recovered")
	}
	first := lines[0].Seq
	if first-1 < lastAck || (first-1)%250 != 0 {
		t.Fatalf("first unacked seq %d, child reported ack %d", first, lastAck)
	}
	for i, l := range lines {
		want := first + uint64(i)
		if l.Seq != want || l.Text != fmt.Sprintf("line %d %s", want, strings.Repeat("x", int(want%97))) {
			t.Fatalf("line %d: seq %d text %q, want seq %d", i, l.Seq, l.Text, want)
		}
	}
	k := lines[len(lines)-1].Seq
	t.Logf("child reported line %d, ack %d before SIGKILL; recovered %d..%d", lastLine, lastAck, first, k)
	if k < lastLine {
		t.Fatalf("recovered up to %d, child had Append return for %d", k, lastLine)
	}
	mustAppend(t, b, "inst", "stdout", "after")
	equalKeys(t, "append after kill", readAll(t, b), []string{fmt.Sprintf("inst/stdout#%d:after", k+1)})
}
