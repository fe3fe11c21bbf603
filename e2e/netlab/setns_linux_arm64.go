package netlab

// sysSetns is setns(2) on linux/arm64 (package syscall lacks it).
const sysSetns = 268
