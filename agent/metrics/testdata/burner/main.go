// Command burner is the metrics tests' workload: "burn" spins one CPU until
// SIGTERM, "idle" sleeps until SIGTERM. It is built static and run either
// in a FROM scratch image or directly in a test cgroup.
package main

import (
	"os"
	"os/signal"
	"syscall"
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
	}
	<-stop
}
