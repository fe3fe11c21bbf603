package exec

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// procStat reads the state letter and start time (clock ticks since boot)
// of a process from /proc/<pid>/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// parseStat parses a /proc/<pid>/stat line. The command name, in
// parentheses, may itself hold spaces and parentheses: fields are counted
// from the last ')'.
func parseStat(b []byte) (state byte, start uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("stat: %d fields", len(f))
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stat: start time: %w", err)
	}
	return f[0][0], start, nil
}

// alive reports whether pid is still the process that started at start
// (not a zombie, not a reused pid).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, st, err := procStat(pid)
	return err == nil && st == start && s != 'Z' && s != 'X'
}

// groupAlive reports whether a process of group pgid still runs (a
// zombie holds nothing but its pid). A killed process dies when the
// kernel next schedules it, which on a busy host is not at once.
func groupAlive(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	want := []byte(strconv.Itoa(pgid))
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		// Fields after the command name: state, ppid, pgrp.
		f := bytes.Fields(b[i+1:])
		if len(f) >= 3 && bytes.Equal(f[2], want) && len(f[0]) == 1 && f[0][0] != 'Z' && f[0][0] != 'X' {
			return true
		}
	}
	return false
}

// signalGroup sends sig to the process group pgid (every instance runs in
// its own group, led by the instance's first process).
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// shimAttr detaches the supervisor from the agent: its own session, so that
// neither the agent's death nor its terminal's signals reach it.
func shimAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}

// childAttr makes the instance's process die with its supervisor and lead
// its own process group; isolated, it also gets its own mount, PID, UTS and
// IPC namespaces (the network namespace stays the agent's).
func childAttr(isolated bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if isolated {
		a.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
	}
	return a
}

// isolationAvailable reports whether this process may create namespaces
// and cgroups.
func isolationAvailable() bool { return os.Geteuid() == 0 }

// prepareNamespaces runs in the isolated child before it executes the
// instance: the hostname, private mounts and a /proc of its own PID
// namespace.
func prepareNamespaces(hostname string) error {
	if err := syscall.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}
