//go:build !(linux || darwin)

package cli

// onResize: no window size signal here; the first size stays.
func onResize(func()) (stop func()) { return func() {} }
