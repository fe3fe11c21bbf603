package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a ')' of its own; utime 250 and
	// stime 30 ticks.
	line := []byte("4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 8 0 123 456 789\n")
	got, err := parseStatCPU(line)
	if err != nil || got != 2.8 {
		t.Fatalf("parseStatCPU = %v, %v; want 2.8 s", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) took a malformed line", bad)
		}
	}
}

// The CPU this process burns shows in its own /proc entry.
func TestProcCPUFollowsTheProcess(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 0.1 {
		t.Fatalf("300 ms of spinning moved the process's CPU by %.2f s", after-before)
	}
	if _, err := parsePids("12,x"); err == nil {
		t.Fatal("parsePids took a non-number")
	}
	if ps, err := parsePids(" 3, 4,"); err != nil || len(ps) != 2 || ps[0] != 3 || ps[1] != 4 {
		t.Fatalf("parsePids = %v, %v", ps, err)
	}
}
