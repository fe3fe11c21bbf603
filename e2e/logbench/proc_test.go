package logbench

import (
	"os"
	"testing"
	"time"
)

func TestProcCPU(t *testing.T) {
	pid := os.Getpid()
	before, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Spin for 300 ms of wall time on this goroutine.
	start := time.Now()
	x := uint64(1)
	for time.Since(start) < 300*time.Millisecond {
		for range 10000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	wall := time.Since(start)
	after, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	used := after - before
	t.Logf("spun %v wall, %v CPU (x=%d), USER_HZ %d", wall, used, x%10, clockTicks())
	// At least most of the spin, at most every core busy for it plus a
	// tick per core.
	if used < 200*time.Millisecond || used > 4*wall+100*time.Millisecond {
		t.Fatalf("ProcCPU grew by %v over a %v spin", used, wall)
	}
}

func TestProcCPUNoProcess(t *testing.T) {
	// PIDs never reach this (pid_max is at most 2^22).
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Fatal("no error for a missing process")
	}
}
