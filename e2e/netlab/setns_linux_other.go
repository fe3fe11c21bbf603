//go:build linux && !amd64 && !arm64

package netlab

// sysSetns is unknown here: Host.Do fails with ENOSYS.
const sysSetns = -1
