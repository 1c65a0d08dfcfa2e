# Strata's build. Versions are pinned in go.mod files, one place each:
#   go.mod                 the project's libraries (k8s.io/* v0.37, controller-runtime)
#   hack/tools/go.mod      the Kubernetes binaries, etcd, kwok, controller-gen
#   hack/tools/lint/go.mod golangci-lint (its dependencies would move the others)
#   hack/tools/buf/go.mod  buf, protoc-gen-go-grpc (same reason); protoc-gen-go
#                          is built from go.mod, to match the protobuf runtime
#   hack/tools/release/go.mod  bin/ocibuild, the release's image builder
#                          (go-containerregistry; same reason)
#   hack/tools/kueue/go.mod    Kueue's controller manager (sigs.k8s.io/kueue
#                          targets other k8s.io versions: its binary, CRDs and
#                          manifests are used, never its Go packages)
SHELL := /usr/bin/env bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := build

BIN := $(CURDIR)/bin
TOOLS := hack/tools
TOOLS_DEPS := $(TOOLS)/go.mod $(TOOLS)/go.sum

# Every Kubernetes binary, kubectl included, is stamped with the version of
# k8s.io/kubernetes: without it they report v0.0.0-master and kubectl cannot
# parse the server's version.
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" { print $$2 }' $(TOOLS)/go.mod)
KUBE_MAJOR := $(patsubst v%,%,$(word 1,$(subst ., ,$(KUBE_VERSION))))
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_VERSION)))
KUBE_LDFLAGS := -s -w $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(pkg).gitVersion=$(KUBE_VERSION) -X $(pkg).gitMajor=$(KUBE_MAJOR) \
	-X $(pkg).gitMinor=$(KUBE_MINOR) -X $(pkg).gitTreeState=clean)

# What the local datacenter and the tests run. They are built by one `go build`,
# so the packages they share compile once and their links run side by side;
# go skips relinking a binary that is up to date. The version stamp is for the
# Kubernetes binaries; the linker ignores it in the others.
KUBE_CMDS := kube-apiserver kube-controller-manager kube-scheduler kubectl
KWOK_CMDS := kwok kwokctl
RUN_TOOL_PKGS := $(addprefix k8s.io/kubernetes/cmd/,$(KUBE_CMDS)) $(addprefix sigs.k8s.io/kwok/cmd/,$(KWOK_CMDS)) ./etcd
RUN_TOOLS := $(addprefix $(BIN)/,$(KUBE_CMDS) $(KWOK_CMDS) etcd)

# Kueue, the batch system under Strata's jobs platform: bin/kueue, and its
# CRDs in bin/kueue-crds (from the module's source, at the pinned version).
KUEUE := $(TOOLS)/kueue
KUEUE_VERSION := $(shell awk '$$1 == "sigs.k8s.io/kueue" { print $$2 }' $(KUEUE)/go.mod)

# What `make generate` writes; `make verify` fails when it differs from git.
GENERATED := ':(glob)api/**/zz_generated.*' config/crd config/rbac config/guardrails ':(glob)proto/**/*.pb.go'

# The ClusterRole of each component, from the +kubebuilder:rbac markers in
# the rbac.go of its controllers' packages: ROLE_<name> lists the packages
# of the ClusterRole <name>, written to config/rbac/<dir>/role.yaml.
# strata-hub-remote is what the hub does on each workload cluster.
RBAC_ROLES := hub:strata-hub hub-remote:strata-hub-remote apps:strata-apps webhook:strata-webhook \
	aggregator:strata-aggregator aggregator-remote:strata-aggregator-remote console:strata-console
RBAC_PKGS_strata-hub := $(addprefix ./internal/cluster/,cluster pool manager rollout remediation) ./internal/workload/appnamespace ./internal/workload/batchqueue ./internal/workload/dispatch ./internal/workload/fleetapp
RBAC_PKGS_strata-hub-remote := ./internal/cluster/remote
RBAC_PKGS_strata-apps := ./internal/workload/statelessapp ./internal/workload/statefulapp ./internal/workload/jobgang
RBAC_PKGS_strata-webhook := ./internal/workload/guardrails
# The aggregator's markers: rbac.go (the hub) and rbac_remote.go (each
# workload cluster), in two packages so controller-gen reads them apart.
RBAC_PKGS_strata-aggregator := ./internal/console/aggregator
RBAC_PKGS_strata-aggregator-remote := ./internal/console/aggregator/remoterbac
RBAC_PKGS_strata-console := ./internal/console/web

# hack/phase.sh times each phase and says so; .ci/run prints the table.
PHASE := hack/phase.sh run

# make test: GO_TEST_FLAGS for every phase (test binaries without DWARF link
# faster; stack traces do not need it), RACE for the unit and integration tests
# (the end-to-end tests' work happens in other processes), E2E_PARALLEL
# end-to-end tests at once beside the unit and integration tests, each with a
# datacenter of its own, and E2E_PARALLEL_LATE at once when those are done
# (never fewer than E2E_PARALLEL; test/e2e/slots_test.go's gate holds them to
# it). One at a time beside them keeps a 2-core machine's load where the
# controllers' timings hold, two alone fit; raise both on a bigger machine.
GO_TEST_FLAGS ?= -count=1 -ldflags=-w
RACE ?= -race
E2E_PARALLEL ?= 1
E2E_PARALLEL_LATE ?= 2

##@ Everyday

.PHONY: build
# `strata version` prints what git says of the tree (nothing outside git):
# GOFLAGS=-buildvcs=false leaves the binary no VCS data of its own.
build: CLI_PKG := github.com/strata-dev/strata/internal/cli
build: ## Build bin/strata, and bin/kubectl-strata (the kubectl plugin: a link to strata).
	@$(PHASE) "build: strata" go build -ldflags "-X $(CLI_PKG).version=$$(git describe --tags --always --dirty 2>/dev/null) \
		-X $(CLI_PKG).commit=$$(git rev-parse --short HEAD 2>/dev/null)" -o $(BIN)/strata ./cmd/strata
	@ln -sf strata $(BIN)/kubectl-strata

.PHONY: run
run: tools build ## Build what the local datacenter needs, then run it (strata up).
	$(BIN)/strata up

# hack/test.sh runs the phases: the end-to-end tests beside the unit and
# integration tests, and a throwaway PostgreSQL (hack/postgres.sh installs it
# from Debian's packages when missing).
.PHONY: test
test: tools build ## Run unit, integration (envtest, PostgreSQL) and end-to-end tests.
	@BIN=$(BIN) GO_TEST_FLAGS='$(GO_TEST_FLAGS)' RACE='$(RACE)' E2E_PARALLEL=$(E2E_PARALLEL) E2E_PARALLEL_LATE=$(E2E_PARALLEL_LATE) hack/test.sh

# hack/fuzz.sh finds every FuzzXxx and runs each for FUZZTIME (go test
# -fuzz takes one target per run); FUZZ narrows them by a regular expression.
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz: ## Run every Go fuzz test for FUZZTIME each (default 60s; FUZZ=regexp picks targets).
	@FUZZTIME=$(FUZZTIME) FUZZ='$(or $(FUZZ),.)' hack/fuzz.sh

# go vet's checks run inside golangci-lint (its govet linter). verify is
# generate, then check-static (the checks alone, for a tree already
# generated). Run beside the tests, check-static slowed the unit and
# integration tests more than it let the end-to-end tests start sooner.
.PHONY: verify
verify: generate check-static ## Check formatting, lint (incl. vet), tidy go.mod files and up-to-date generated code.

.PHONY: check-static
check-static: $(BIN)/golangci-lint ## The checks of verify without generate: formatting, lint, tidy, generated code committed.
	@$(PHASE) "verify: gofmt" bash -c 'files=$$(gofmt -l $$(git ls-files "*.go")); \
		if [ -n "$$files" ]; then echo "gofmt needed on: $$files"; exit 1; fi'
	@$(PHASE) "verify: golangci-lint" $(BIN)/golangci-lint run ./...
	@$(PHASE) "verify: go mod tidy" bash -c 'go mod tidy -diff && for m in $(TOOLS) $(TOOLS)/lint $(TOOLS)/buf $(TOOLS)/release $(KUEUE); do \
		(cd $$m && go mod tidy -diff) || exit 1; done'
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		git status --porcelain -- $(GENERATED); \
		echo "Generated code is out of date: run 'make generate' and commit the result."; exit 1; fi

.PHONY: generate
generate: $(BIN)/controller-gen $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Generate deepcopy code and CRDs from api/, RBAC and guardrail manifests, Go code from proto/.
	@$(PHASE) "generate" bash -c '$(BIN)/controller-gen object paths=./api/... && \
		$(BIN)/controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd && \
		$(foreach r,$(RBAC_ROLES),$(BIN)/controller-gen rbac:roleName=$(word 2,$(subst :, ,$(r))) \
			$(addprefix paths=,$(RBAC_PKGS_$(word 2,$(subst :, ,$(r))))) output:rbac:dir=config/rbac/$(word 1,$(subst :, ,$(r))) && ) \
		go run ./hack/manifests config/guardrails && \
		$(BIN)/buf lint && find proto -name "*.pb.go" -delete && $(BIN)/buf generate'

##@ Release

# The image's repository in the manifests; they name the image by digest.
IMAGE ?= ghcr.io/strata-dev/strata
DIST := $(CURDIR)/dist

.PHONY: release
# Offline: the static binary (CGO_ENABLED=0; SQLite is modernc.org/sqlite,
# pure Go) in an OCI image layout built by bin/ocibuild (no Docker, no base
# image), and the manifests referencing it by digest. Push it with any OCI
# tool, e.g. `crane push dist/image $(IMAGE)` or `skopeo copy oci:dist/image ...`.
release: CLI_PKG := github.com/strata-dev/strata/internal/cli
release: $(BIN)/ocibuild $(BIN)/kubectl ## Build dist/image (OCI layout) and render dist/strata-hub.yaml and dist/strata-workload.yaml.
	@$(PHASE) "release: strata (linux, static)" env CGO_ENABLED=0 GOOS=linux go build -trimpath \
		-ldflags "-s -w -buildid= -X $(CLI_PKG).version=$$(git describe --tags --always --dirty 2>/dev/null) \
		-X $(CLI_PKG).commit=$$(git rev-parse --short HEAD 2>/dev/null)" -o $(DIST)/linux/strata ./cmd/strata
	@$(PHASE) "release: image" bash -c '$(BIN)/ocibuild --binary $(DIST)/linux/strata --out $(DIST)/image \
		--ref "$$(git describe --tags --always --dirty 2>/dev/null)" > $(DIST)/image.digest'
	@hack/render-manifests.sh $(BIN)/kubectl $(IMAGE)@$$(cat $(DIST)/image.digest) $(DIST)
	@echo "image $(IMAGE)@$$(cat $(DIST)/image.digest), $$(du -sh $(DIST)/image | cut -f1) in dist/image; manifests in dist/"

##@ Tools (built from source; a cold build takes several minutes)

.PHONY: tools
tools: $(RUN_TOOLS) $(BIN)/kueue $(BIN)/kueue-manifests.yaml ## Build what the local datacenter and the tests run (Kubernetes, etcd, kwok, Kueue) into bin/.

$(RUN_TOOLS) &: $(TOOLS_DEPS) $(TOOLS)/etcd/main.go
	@cd $(TOOLS) && $(CURDIR)/$(PHASE) "tools: Kubernetes, etcd, kwok" \
		go build -ldflags '$(KUBE_LDFLAGS)' -o $(BIN)/ $(RUN_TOOL_PKGS)

# Built with one change, made at build time by $(KUEUE)/overlay.sh: the
# metrics certificate directory, hard-coded for a container, can be given
# (KUEUE_METRICS_CERT_DIR), so the local datacenter runs Kueue as a process.
# The overlay's folder starts with _ so that ./... of Strata's module skips it.
$(BIN)/kueue: $(KUEUE)/go.mod $(KUEUE)/go.sum $(KUEUE)/overlay.sh
	@# go list -m names no folder for a module not yet in the module cache.
	@cd $(KUEUE) && go mod download sigs.k8s.io/kueue && ./overlay.sh "$$(go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)" $(BIN)/_kueue-overlay
	@cd $(KUEUE) && $(CURDIR)/$(PHASE) "tools: Kueue" go build -overlay $(BIN)/_kueue-overlay/overlay.json \
		-ldflags '-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$(KUEUE_VERSION)' -o $@ ./cmd/kueue
	@cd $(KUEUE) && rm -rf $(BIN)/kueue-crds && cp -r "$$(go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)/config/components/crd/bases" $(BIN)/kueue-crds && \
		chmod -R u+w $(BIN)/kueue-crds

# Kueue's release manifests (its config/default at the pinned version,
# rendered offline by kubectl's kustomize): `strata up` installs their CRDs,
# RBAC and webhook configurations into the local clusters.
$(BIN)/kueue-manifests.yaml: $(KUEUE)/go.mod $(KUEUE)/go.sum $(BIN)/kubectl
	@cd $(KUEUE) && $(BIN)/kubectl kustomize "$$(go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)/config/default" >$@.tmp && mv $@.tmp $@

$(BIN)/controller-gen: $(TOOLS_DEPS)
	@cd $(TOOLS) && $(CURDIR)/$(PHASE) "tools: controller-gen" go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(BIN)/golangci-lint: $(TOOLS)/lint/go.mod $(TOOLS)/lint/go.sum
	@cd $(TOOLS)/lint && $(CURDIR)/$(PHASE) "tools: golangci-lint" go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# The release's image builder: go-containerregistry's dependencies would
# move the other modules' pins.
$(BIN)/ocibuild: $(TOOLS)/release/go.mod $(TOOLS)/release/go.sum $(TOOLS)/release/main.go
	@cd $(TOOLS)/release && $(CURDIR)/$(PHASE) "tools: ocibuild" go build -o $@ .

$(BIN)/buf $(BIN)/protoc-gen-go-grpc &: $(TOOLS)/buf/go.mod $(TOOLS)/buf/go.sum
	@cd $(TOOLS)/buf && $(CURDIR)/$(PHASE) "tools: buf, protoc-gen-go-grpc" \
		go build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf google.golang.org/grpc/cmd/protoc-gen-go-grpc

# From the root module: the generated code must match its protobuf runtime.
$(BIN)/protoc-gen-go: go.mod go.sum
	@$(PHASE) "tools: protoc-gen-go" go build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go

.PHONY: clean
clean: ## Remove bin/ and dist/ (the strata home is removed by 'strata down').
	rm -rf $(BIN) $(DIST)

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_%\/$$()-]+:.*##/ { printf "  %-12s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
