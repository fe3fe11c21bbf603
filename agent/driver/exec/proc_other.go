//go:build !linux

package exec

import (
	"errors"
	"syscall"
)

// Off Linux there is no /proc to tell a live pid from a reused one: the
// driver then trusts the pid alone.

func procStat(pid int) (byte, uint64, error) { return 0, 0, errors.New("no /proc") }

func parseStat(b []byte) (byte, uint64, error) { return 0, 0, errors.New("no /proc") }

func alive(pid int, start uint64) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func groupAlive(pgid int) bool { return pgid > 1 && syscall.Kill(-pgid, 0) == nil }

func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, sig)
	}
}

func shimAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func childAttr(isolated bool) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func isolationAvailable() bool { return false }

func prepareNamespaces(hostname string) error { return errors.New("namespaces need Linux") }
