package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// Drivers, as agents report them in their inventory and pools declare
// them.
const (
	DriverDocker     = "docker"
	DriverExec       = "exec"
	DriverKubernetes = "kubernetes"
)

// KnownDriver reports whether name is a driver a pool may declare.
func KnownDriver(name string) bool {
	switch name {
	case DriverDocker, DriverExec, DriverKubernetes:
		return true
	}
	return false
}

// Workloads: what an app brings decides which drivers can run it.
const (
	// WorkloadImage is an app with an image: docker and kubernetes hosts
	// run it.
	WorkloadImage = "image"
	// WorkloadCommand is an app with only a command: exec hosts run it.
	WorkloadCommand = "command"
)

// WorkloadOf returns the workload of an app with the given image ("" for
// an app with only a command).
func WorkloadOf(image string) string {
	if image != "" {
		return WorkloadImage
	}
	return WorkloadCommand
}

// Runs reports whether driver can run workload. An empty workload is run
// by every driver.
func Runs(driver, workload string) bool {
	switch workload {
	case "":
		return true
	case WorkloadImage:
		return driver == DriverDocker || driver == DriverKubernetes
	case WorkloadCommand:
		return driver == DriverExec
	}
	return false
}

// RunsAny reports whether one of drivers can run workload.
func RunsAny(drivers []string, workload string) bool {
	return slices.ContainsFunc(drivers, func(d string) bool { return Runs(d, workload) })
}

// need says which drivers workload needs, for explanations: "docker or
// kubernetes", "exec".
func need(workload string) string {
	if workload == WorkloadCommand {
		return DriverExec
	}
	return DriverDocker + " or " + DriverKubernetes
}

// needWhy explains need for people who did not write the rule.
func needWhy(workload string) string {
	if workload == WorkloadCommand {
		return "apps with only a command need an exec host"
	}
	return "apps with an image need a docker or kubernetes host"
}

// Verdict is whether a pool could ever run an app.
type Verdict int

// Verdicts of PoolRuns.
const (
	// Unknown: the pool declares no drivers and its provider says nothing
	// about them (hosts enrolled by hand, bare metal).
	Unknown Verdict = iota
	Yes
	No
)

// PoolDrivers returns the drivers a pool's hosts run, judged from what it
// declares, else from its provider (kubernetes: the kubernetes driver;
// the clouds' machines: docker); nil when neither says. Its current hosts
// do not count: a pool is judged by what it could ever run.
func PoolDrivers(declared []string, provider string) []string {
	if len(declared) > 0 {
		return declared
	}
	switch provider {
	case "kubernetes":
		return []string{DriverKubernetes}
	case "aws", "aliyun", "vsphere", "openstack":
		return []string{DriverDocker}
	}
	return nil
}

// PoolRuns judges whether a pool with the declared drivers and provider
// could ever run workload.
func PoolRuns(declared []string, provider, workload string) Verdict {
	ds := PoolDrivers(declared, provider)
	switch {
	case ds == nil:
		return Unknown
	case RunsAny(ds, workload):
		return Yes
	}
	return No
}

// NoPoolRuns explains that none of pools runs workload; drivers[i] is
// what PoolDrivers says pools[i] runs.
func NoPoolRuns(workload string, pools []string, drivers [][]string) string {
	parts := make([]string, len(pools))
	for i, p := range pools {
		parts[i] = fmt.Sprintf("pool %s runs %s", p, strings.Join(drivers[i], ","))
	}
	return fmt.Sprintf("%s, and no pool this app may use has one (%s)", needWhy(workload), strings.Join(parts, "; "))
}

// HostRuns reports whether a host whose agent reports drivers can run
// workload. A host that reports no driver is not judged (an agent that
// predates driver reports).
func HostRuns(drivers []string, workload string) bool {
	return len(drivers) == 0 || RunsAny(drivers, workload)
}

func hostRuns(h *Host, workload string) bool { return HostRuns(h.Drivers, workload) }
