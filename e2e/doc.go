// Package e2e holds multi-process tests that run the real wharf binary as a
// user would (the short ones run in `make test`), and, in subdirectories, the
// benchmarks and load tools of `make bench`.
//
// Most tests run one after another: many assert on timing (failover,
// autoscaling, zero loss) and are written for a machine whose load is the
// suite's own. The tests of provisioned pools, Kubernetes members and
// multi-cloud failover each start everything they use (a hub cluster, a
// cloud simulator, a network lab, a Kubernetes cluster) on ports and names
// of their own and mostly wait for machines and clusters to come up: they
// call t.Parallel, and run side by side (go test's -parallel, the number
// of CPUs by default) once the others are done.
package e2e
