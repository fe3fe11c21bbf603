// Package e2e holds multi-process tests that run the real wharf binary as a
// user would (the short ones run in `make test`), and, in subdirectories, the
// benchmarks and load tools of `make bench`.
package e2e
