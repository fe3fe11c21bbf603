package logbench

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestProcCPU(t *testing.T) {
	pid := os.Getpid()
	self := func() time.Duration { // this process's CPU time, from the kernel's own accounting
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	r0 := self()
	// Spin until this process has used 300 ms of CPU (however long a
	// loaded machine takes to give it that), bounded in wall time.
	x := uint64(1)
	for give := time.Now().Add(time.Minute); self()-r0 < 300*time.Millisecond; {
		if time.Now().After(give) {
			t.Fatal("300 ms of CPU not reached within a minute")
		}
		for range 10000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	ru := self() - r0
	after, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	used := after - before
	t.Logf("getrusage says %v, ProcCPU says %v (x=%d), USER_HZ %d", ru, used, x%10, clockTicks())
	// /proc counts in ticks: allow a few of them either way.
	if slack := 5 * time.Second / time.Duration(clockTicks()); used < ru-slack || used > ru+slack+50*time.Millisecond {
		t.Fatalf("ProcCPU grew by %v while getrusage grew by %v", used, ru)
	}
}

func TestProcCPUNoProcess(t *testing.T) {
	// PIDs never reach this (pid_max is at most 2^22).
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Fatal("no error for a missing process")
	}
}
