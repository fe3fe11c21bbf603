//go:build linux || darwin

package cli

import (
	"os"
	"os/signal"
	"syscall"
)

// onResize calls fn on every window size change (SIGWINCH) until the
// returned func runs.
func onResize(fn func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				fn()
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
