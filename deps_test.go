package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/wharf-platform/wharf"

// networking lists the packages that open connections; the storage and
// shared packages below must work without any of them.
var networking = []string{
	"net", "net/http", "github.com/quic-go/quic-go", "github.com/hashicorp/memberlist",
	"github.com/hashicorp/raft", "github.com/hashicorp/raft-wal",
}

// TestImportRules enforces the layout's import rules: pkg imports neither
// hub nor agent; hub and agent never import each other; providers import
// pkg only; the pure packages stay free of heavy deps; what lives on disk
// knows nothing of the network; feature packages under hub and agent never
// import their root.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}|{{join .Deps " "}}|{{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	// direct rules look at a package's own imports, the others at
	// everything it pulls in. A forbidden path also forbids the packages
	// below it, unless exact is set.
	rules := []struct {
		pkgPrefix string
		forbidden []string
		direct    bool
		exact     bool
		except    []string // packages under pkgPrefix the rule spares
	}{
		{module + "/pkg/", []string{module + "/hub", module + "/agent", module + "/providers"}, false, false, nil},
		{module + "/hub/", []string{module + "/agent"}, false, false, nil},
		// The hub drives clouds through the providers interface; the
		// clouds' packages (and their SDKs) register themselves and are
		// linked by main.go only, so that packages tests import stay light.
		{module + "/hub/", []string{module + "/providers/aws", module + "/providers/aliyun", module + "/providers/vsphere", module + "/providers/openstack", module + "/providers/ssh"}, false, false, nil},
		{module + "/agent/", []string{module + "/hub", module + "/providers"}, false, false, nil},
		// The agent's features (identity, routes, workload, supervisor,
		// router, logship, metrics, drivers...) are wired by the agent root
		// and never reach back into it (agentFeatures below must each be
		// checked by this rule).
		{module + "/agent/", []string{module + "/agent"}, false, true, nil},
		// What the features share to meet the root (the control-stream
		// registry, runners, the hub dial) is below every other agent
		// package.
		{module + "/agent/control", []string{module + "/agent"}, false, false, nil},
		{module + "/agent/run", []string{module + "/agent"}, false, false, nil},
		{module + "/agent/hubconn", []string{module + "/agent"}, false, false, nil},
		{module + "/providers/", []string{module + "/hub", module + "/agent"}, false, false, nil},
		// The state store knows nothing of networking or of the API.
		{module + "/hub/state", []string{module + "/hub/api", module + "/hub/cluster", "github.com/hashicorp/memberlist"}, false, false, nil},
		{module + "/hub/state", []string{"net", "net/http"}, true, false, nil},
		// The API talks to the cluster through a small interface.
		{module + "/hub/api", []string{module + "/hub/cluster", "github.com/hashicorp/memberlist"}, false, false, nil},
		// What internal holds is below hub and agent; its storage parts
		// are off the network (the demo app built into the CLI serves HTTP).
		{module + "/internal/", []string{module + "/hub", module + "/agent"}, false, false, nil},
		{module + "/internal/seglog", networking, false, false, nil},
		{module + "/internal/atomicfile", networking, false, false, nil},
		{module + "/internal/killtest", networking, false, false, nil},
		// The store owns its types: an API change never changes what is on
		// disk.
		{module + "/hub/state", []string{module + "/pkg/apitypes", module + "/hub/alert"}, false, false, []string{module + "/hub/state/statetest"}},
		// The log stores on both sides are storage only: no network, and
		// not the wiring of the hub or the agent.
		{module + "/agent/logship", append([]string{module + "/hub", module + "/agent"}, networking...), false, true, nil},
		{module + "/hub/logstore", append([]string{module + "/hub", module + "/agent"}, networking...), false, true, nil},
		// Feature packages under hub/ reach each other through small
		// interfaces, never through the composition root; only the test
		// harness that starts whole nodes imports it.
		{module + "/hub/", []string{module + "/hub"}, true, false, []string{module + "/hub/hubtest"}},
		// The AWS SDK is huge: only its provider links it (and the
		// binary's root, which imports the provider to register it).
		{module, []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"}, false, false, []string{module, module + "/providers/aws"}},
		// client-go too: only the kubernetes driver links it, and the
		// agent's root, which picks the driver (so the binary's root and
		// the e2e packages that start whole agents in-process).
		{module, []string{"k8s.io/client-go", "k8s.io/api", "k8s.io/apimachinery", "k8s.io/metrics"}, false, false,
			[]string{module, module + "/agent", module + "/agent/driver/kubernetes", module + "/e2e", module + "/e2e/agentload"}},
		// So are gophercloud and govmomi: only their provider and the root
		// link them, and govmomi's vCenter simulator its command of the
		// e2e tests (whose tests may also drive it with govmomi, never
		// the provider's code paths in other packages).
		{module, []string{"github.com/gophercloud/gophercloud/v2"}, false, false, []string{module, module + "/providers/openstack"}},
		{module, []string{"github.com/vmware/govmomi"}, false, false, []string{module, module + "/providers/vsphere", module + "/e2e/cloudsim/vcsim"}},
		// The same for the Alibaba Cloud SDK.
		{module, []string{"github.com/aliyun/alibaba-cloud-sdk-go"}, false, false, []string{module, module + "/providers/aliyun"}},
	}
	// Packages that must build from the standard library alone: every
	// part of the binary links them, and the linker stamps them.
	// The cloud simulators too: they must not share code (or bugs) with
	// the SDKs they are tested against.
	stdOnly := map[string]bool{module + "/internal/version": true, module + "/e2e/cloudsim": true}
	// The agent's feature packages the never-import-the-root rule must
	// see: a rename that left the rule checking nothing fails here.
	agentFeatures := map[string]bool{}
	for _, f := range []string{"control", "run", "hubconn", "identity", "hubs", "inventory", "local", "routes", "workload",
		"gossip", "lease", "supervisor", "logs", "logship", "metrics", "router", "driver", "exec"} {
		agentFeatures[module+"/agent/"+f] = true
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		pkg, deps, imports := parts[0], parts[1], parts[2]
		if stdOnly[pkg] {
			checked++
			delete(stdOnly, pkg)
			for _, d := range strings.Fields(deps) {
				if first, _, _ := strings.Cut(d, "/"); strings.Contains(first, ".") {
					t.Errorf("%s imports %s: it may import only the standard library", pkg, d)
				}
			}
		}
		for _, r := range rules {
			if pkg != strings.TrimSuffix(r.pkgPrefix, "/") && !strings.HasPrefix(pkg, r.pkgPrefix) || slices.Contains(r.except, pkg) {
				continue
			}
			checked++
			if r.pkgPrefix == module+"/agent/" && slices.Equal(r.forbidden, []string{module + "/agent"}) {
				delete(agentFeatures, pkg)
			}
			list := deps
			if r.direct {
				list = imports
			}
			for _, d := range strings.Fields(list) {
				for _, f := range r.forbidden {
					if d == f || (!r.direct && !r.exact && strings.HasPrefix(d, f+"/")) {
						t.Errorf("%s imports %s, which the layout forbids", pkg, d)
					}
				}
			}
		}
	}
	for pkg := range agentFeatures {
		t.Errorf("%s is gone: update the agent's feature packages in this test", pkg)
	}
	for pkg := range stdOnly {
		t.Errorf("%s is gone: update the standard-library-only rule", pkg)
	}
	if checked == 0 {
		t.Fatal("no package matched any rule: the module path or layout changed")
	}
}
