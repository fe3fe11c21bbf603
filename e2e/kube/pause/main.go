// Command pause is the sandbox ("pause") container of the kubeenv test
// kubelets: it holds a Pod's namespaces open until the runtime stops it.
// No registry is reachable where the tests run, so the harness packs this
// static binary into a FROM-scratch image itself. As PID 1 of a Pod that
// shares its PID namespace it also reaps orphaned children.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
