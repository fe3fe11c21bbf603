package logbench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// atClkTck is the auxiliary-vector key of the kernel's USER_HZ, the unit of
// the times in /proc/<pid>/stat (what sysconf(_SC_CLK_TCK) returns).
const atClkTck = 17

// clockTicks is USER_HZ as the kernel told this process at exec, or 100
// (its value on every Linux architecture Go supports) if the auxiliary
// vector is unavailable.
var clockTicks = sync.OnceValue(func() int64 {
	auxv, err := unix.Auxv()
	if err != nil {
		return 100
	}
	for _, kv := range auxv {
		if kv[0] == atClkTck && kv[1] > 0 {
			return int64(kv[1])
		}
	}
	return 100
})

// ProcCPU returns the user plus system CPU time that process pid has used
// so far, all its threads together but not its children, from fields 14 and
// 15 of /proc/<pid>/stat. Those are counted in clock ticks (USER_HZ, read
// once from the auxiliary vector, 100 on Linux), so the result moves in
// steps of 10 ms per thread: measure runs of seconds, not milliseconds.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces and parentheses: count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	hz := clockTicks()
	return time.Duration(ticks/hz)*time.Second + time.Duration(ticks%hz)*time.Second/time.Duration(hz), nil
}
