package netlab

// sysSetns is setns(2) on linux/amd64 (package syscall lacks it).
const sysSetns = 308
