package main

import (
	"os"
	"testing"
	"time"
)

// The CPU the named processes burn is what serversCPU sums: this process,
// named twice, counts twice.
func TestServersCPUFollowsTheProcesses(t *testing.T) {
	me := os.Getpid()
	before, err := serversCPU([]int{me, me})
	if err != nil {
		t.Fatal(err)
	}
	// Spin until this process has used 150 ms of CPU, however long a
	// loaded machine takes to give it that (bounded in wall time).
	r0 := selfCPU()
	for give := time.Now().Add(time.Minute); selfCPU()-r0 < 0.15; {
		if time.Now().After(give) {
			t.Fatal("150 ms of CPU not reached within a minute")
		}
	}
	after, err := serversCPU([]int{me, me})
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 0.2 {
		t.Fatalf("150 ms of CPU, counted twice, moved the sum by %.2f s", after-before)
	}
	if _, err := serversCPU([]int{me, 1 << 30}); err == nil {
		t.Fatal("a process that does not exist was summed")
	}
	if none, err := serversCPU(nil); err != nil || none != 0 {
		t.Fatalf("no process: %v, %v", none, err)
	}
}

func TestParsePids(t *testing.T) {
	if _, err := parsePids("12,x"); err == nil {
		t.Fatal("parsePids took a non-number")
	}
	if _, err := parsePids("0"); err == nil {
		t.Fatal("parsePids took 0")
	}
	if ps, err := parsePids(" 3, 4,"); err != nil || len(ps) != 2 || ps[0] != 3 || ps[1] != 4 {
		t.Fatalf("parsePids = %v, %v", ps, err)
	}
}
