// Command burner is the metrics tests' workload: "burn" spins one CPU
// until SIGTERM, and every 100 ms maps and writes a fresh megabyte (the
// one before unmapped), so that a cgroup it is moved into is charged for
// memory even where the pages it had are not moved along (cgroup v1 moves
// no charge out of the root cgroup); "idle" sleeps until SIGTERM. It is
// built static and run either in a FROM scratch image or directly in a
// test cgroup.
package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

var sink uint64

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if len(os.Args) > 1 && os.Args[1] == "burn" {
		go func() {
			for x := uint64(0); ; x++ {
				sink = x * x
			}
		}()
		go touch()
	}
	<-stop
}

// touch keeps a freshly written megabyte mapped.
func touch() {
	var held []byte
	for {
		b, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err == nil {
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			if held != nil {
				_ = syscall.Munmap(held)
			}
			held = b
		}
		time.Sleep(100 * time.Millisecond)
	}
}
