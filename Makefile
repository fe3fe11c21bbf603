# Wharf. `make run` starts a single-node Wharf (wharf dev); `make test` runs
# the whole test suite as CI does. See README.md.
GO        ?= go
BIN       := bin/wharf
PKGS      := ./...
# The cloud SDK adapters are thin and single-threaded over huge generated
# clients: they run without the race detector, everything else with it.
# providers/aliyun runs with it: it makes an SDK client per call over one
# shared transport, and the root and e2e packages race-build its SDK anyway.
SDK_PKGS  := ./providers/aws
RACE_PKGS := $(filter-out $(addprefix github.com/wharf-platform/wharf/,$(SDK_PKGS:./%=%)),$(shell $(GO) list ./...))
# Agents held by one hub node in `make bench` (a few minutes); the goal in
# e2e/BENCHMARKS.md is 10,000, and a 2-core machine measures up to
# AGENTS=5000 AGENT_PROCS=3. The agents run in AGENT_PROCS
# load processes; with 2 CPUs or more the hub is pinned to CPU 0 and the
# load to the others, so the two do not take each other's time.
AGENTS      ?= 2000
AGENT_PROCS ?= 2
AGENT_PIN   ?= $(shell n=$$(nproc); [ $$n -ge 2 ] && echo "-hub-cpus 0 -load-cpus 1-$$((n-1))")
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -s -w: no symbol table or DWARF (stack traces keep their names). Every
# provisioned machine downloads this binary from the hub.
LDFLAGS   := -s -w -X github.com/wharf-platform/wharf/internal/version.version=$(VERSION)

.PHONY: build run test test-short e2e bench fuzz lint proto clean kube-tools vendor-axe

# axe-core for the console's accessibility test (e2e/console_a11y_test.go):
# a test asset, never served by the hub. Rebuilds the committed
# e2e/axe/axe.min.js and its LICENSE (MPL-2.0) from the lockfile with npm ci.
vendor-axe:
	cd e2e/axe && npm ci --ignore-scripts --no-audit --no-fund
	cp e2e/axe/node_modules/axe-core/axe.min.js e2e/axe/node_modules/axe-core/LICENSE e2e/axe/
	rm -rf e2e/axe/node_modules

# Static (no cgo: the resolver and user lookups are Go's own), so that
# `wharf dev` can run its demo app from a FROM scratch image of the binary.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

run: build
	./$(BIN) dev

# The Kubernetes binaries the kubernetes driver's tests run (e2e/kubeenv):
# built from the module proxy into ~/.cache/wharf-kube (WHARF_KUBE_BIN)
# when missing; nothing to do when they are there.
kube-tools:
	GO=$(GO) ./e2e/kube/build.sh

# The whole suite: unit, loopback integration (real Raft clusters), fuzz
# seeds, with the race detector. CI runs exactly this. The e2e package is
# the long pole (about 20 minutes here, more on a loaded machine): its
# timeout leaves room for that, and a wait that cannot end reports what it
# saw 30 s before it.
test: kube-tools
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 40m $(RACE_PKGS)
	$(GO) test -count=1 -timeout 10m $(SDK_PKGS)
	cd e2e/bench && $(GO) vet ./... && $(GO) test -count=1 ./...

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Longer multi-process suites.
e2e: build
	$(GO) test -count=1 -timeout 60m -tags e2e ./e2e/...

# Go benchmarks and the side-by-side load tools; results go to e2e/BENCHMARKS.md.
bench: build
	$(GO) test -run '^$$' -bench PutApp -benchmem ./hub
	$(GO) test -run '^$$' -bench . -benchmem ./hub/state ./pkg/...
	$(GO) test -run '^$$' -bench 'Placements$$' -benchtime 1x ./hub/planner
	$(GO) test -run '^$$' -bench RoundAtScale -benchmem -benchtime 3000x ./hub/planner
	$(GO) test -run '^$$' -bench PlacementsRaft -benchtime 1x ./hub
	$(GO) test -run '^$$' -bench HostsLost -benchtime 1x ./hub
	$(GO) test -run '^$$' -bench Churn -benchtime 1x -timeout 30m ./hub -churn.for 30s
	$(GO) test -run '^$$' -bench DeployLatency -benchtime 20x ./e2e
	$(GO) test -run '^$$' -bench KubeDeploy -benchtime 20x ./e2e
	$(GO) test -run '^$$' -bench KubeAgent1000Pods -benchtime 1x ./e2e
	$(GO) test -run '^$$' -bench RoutePush -benchtime 100x ./e2e
	$(GO) test -run '^$$' -bench LogShipping -benchtime 3x ./e2e
	$(GO) test -run '^$$' -bench . -benchmem ./hub/logstore
	$(GO) test -run '^$$' -bench 'PeerReport|PoolPeers|BuildRouteTable' -benchmem ./hub/gateway
	$(GO) test -run '^$$' -bench EvaluateSteady -benchmem ./hub/liveness
	$(GO) test -run '^$$' -bench . -benchmem ./agent/router ./agent/routes ./agent/logship
	$(GO) test -run '^$$' -bench RouterSideBySide -benchtime 1x ./e2e
	$(GO) test -run '^$$' -bench 'DatacenterLoss|HostDeath' -benchtime 10x ./e2e
	$(GO) test -run '^$$' -bench Provision100 -benchtime 1x ./hub/provision
	$(GO) test -run '^$$' -bench ProvisionPool100 -benchtime 1x ./e2e
	$(GO) test -run '^$$' -bench Invoices100Tenants -benchtime 3x -benchmem ./hub/billing
	$(GO) test -run '^$$' -bench Autoscale -benchtime 3x ./e2e
	./e2e/bench/api.sh
	$(GO) build -o bin/agentload ./e2e/agentload
	./bin/agentload -wharf $(BIN) -n $(AGENTS) -procs $(AGENT_PROCS) $(AGENT_PIN) -duration 20s

# Short coverage-guided fuzzing of every decoder.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode$$ -fuzztime $(FUZZTIME) ./hub/state
	$(GO) test -run '^$$' -fuzz FuzzApply$$ -fuzztime $(FUZZTIME) ./hub/state
	$(GO) test -run '^$$' -fuzz FuzzMeterCommands$$ -fuzztime $(FUZZTIME) ./hub/state
	$(GO) test -run '^$$' -fuzz FuzzDecodeAppSpec$$ -fuzztime $(FUZZTIME) ./hub/api
	$(GO) test -run '^$$' -fuzz FuzzDecodeRequests$$ -fuzztime $(FUZZTIME) ./hub/api
	$(GO) test -run '^$$' -fuzz FuzzDecodePlan$$ -fuzztime $(FUZZTIME) ./hub/api
	$(GO) test -run '^$$' -fuzz FuzzParseJoinToken$$ -fuzztime $(FUZZTIME) ./pkg/pki
	$(GO) test -run '^$$' -fuzz FuzzReadFrame$$ -fuzztime $(FUZZTIME) ./pkg/wire
	$(GO) test -run '^$$' -fuzz FuzzDecodeEnvelope$$ -fuzztime $(FUZZTIME) ./pkg/wire
	$(GO) test -run '^$$' -fuzz FuzzApplyRouteDelta$$ -fuzztime $(FUZZTIME) ./pkg/wire
	$(GO) test -run '^$$' -fuzz FuzzSplitRouteTable$$ -fuzztime $(FUZZTIME) ./pkg/wire
	$(GO) test -run '^$$' -fuzz FuzzParse$$ -fuzztime $(FUZZTIME) ./hub/drain
	$(GO) test -run '^$$' -fuzz FuzzParseThreshold$$ -fuzztime $(FUZZTIME) ./hub/alert
	$(GO) test -run '^$$' -fuzz FuzzReadFrame$$ -fuzztime $(FUZZTIME) ./internal/seglog
	$(GO) test -run '^$$' -fuzz FuzzLineDecode$$ -fuzztime $(FUZZTIME) ./internal/seglog
	$(GO) test -run '^$$' -fuzz FuzzRoundTrip$$ -fuzztime $(FUZZTIME) ./hub/logstore
	$(GO) test -run '^$$' -fuzz FuzzFrontParse$$ -fuzztime $(FUZZTIME) ./agent/router
	$(GO) test -run '^$$' -fuzz FuzzDecodeFiles$$ -fuzztime $(FUZZTIME) ./hub/logstore
	$(GO) test -run '^$$' -fuzz FuzzRecover$$ -fuzztime $(FUZZTIME) ./hub/logstore
	$(GO) test -run '^$$' -fuzz FuzzDecodeRequest$$ -fuzztime $(FUZZTIME) ./e2e/cloudsim
	$(GO) test -run '^$$' -fuzz FuzzDecodeNovaRequest$$ -fuzztime $(FUZZTIME) ./e2e/cloudsim
	$(GO) test -run '^$$' -fuzz FuzzDecodeECSRequest$$ -fuzztime $(FUZZTIME) ./e2e/cloudsim
	$(GO) test -run '^$$' -fuzz FuzzDecodeVSphereRequest$$ -fuzztime $(FUZZTIME) ./e2e/cloudsim
	$(GO) test -run '^$$' -fuzz FuzzDecodeGuestinfo$$ -fuzztime $(FUZZTIME) ./e2e/cloudsim
	$(GO) test -run '^$$' -fuzz FuzzScript$$ -fuzztime $(FUZZTIME) ./e2e/cloudsim/netboot

# Regenerates pkg/wire from wire.proto (needs protobuf-compiler and
# protoc-gen-go v1.36.12; the generated code is committed).
proto:
	./pkg/wire/gen.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

# Stops what `wharf dev` started (containers, exec instances) before its
# data goes; refuses, and removes nothing, while `make run` is running.
clean:
	if [ -x $(BIN) ] && [ -d wharf-data ]; then ./$(BIN) dev --clean; fi
	rm -rf bin wharf-data
