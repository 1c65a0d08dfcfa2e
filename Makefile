# Strata's build. Versions are pinned in go.mod files, one place each:
#   go.mod                 the project's libraries (k8s.io/* v0.37, controller-runtime)
#   hack/tools/go.mod      the Kubernetes binaries, etcd, kwok, controller-gen
#   hack/tools/lint/go.mod golangci-lint (its dependencies would move the others)
#   hack/tools/buf/go.mod  buf, protoc-gen-go-grpc (same reason); protoc-gen-go
#                          is built from go.mod, to match the protobuf runtime
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

KUBE_CMDS := kube-apiserver kube-controller-manager kube-scheduler kubectl
KWOK_CMDS := kwok kwokctl
TOOL_BINS := $(addprefix $(BIN)/,$(KUBE_CMDS) $(KWOK_CMDS) etcd controller-gen)

# What `make generate` writes; `make verify` fails when it differs from git.
GENERATED := ':(glob)api/**/zz_generated.*' config/crd ':(glob)proto/**/*.pb.go'

GO_TEST_FLAGS ?= -race -count=1 -timeout=45m

##@ Everyday

.PHONY: build
build: ## Build bin/strata, and bin/kubectl-strata (the kubectl plugin: a link to strata).
	go build -o $(BIN)/strata ./cmd/strata
	ln -sf strata $(BIN)/kubectl-strata

.PHONY: run
run: tools build ## Build everything, then run the local datacenter (strata up).
	$(BIN)/strata up

# The tests run against a throwaway PostgreSQL (hack/postgres.sh installs it
# from Debian's packages when missing) as well as SQLite. Its directory is
# under /tmp: as root the server runs as the postgres user.
.PHONY: test
test: tools build ## Run unit, integration (envtest, PostgreSQL) and end-to-end tests.
	pg=$$(mktemp -d /tmp/strata-postgres.XXXXXX); \
	trap 'hack/postgres.sh stop '"$$pg"' >/dev/null; rm -rf '"$$pg" EXIT; \
	dsn=$$(hack/postgres.sh start "$$pg"); \
	STRATA_TEST_POSTGRES_DSN="$$dsn" KUBEBUILDER_ASSETS=$(BIN) STRATA_BIN_DIR=$(BIN) go test $(GO_TEST_FLAGS) ./...

.PHONY: verify
verify: generate $(BIN)/golangci-lint ## Check formatting, vet, lint, tidy go.mod files and up-to-date generated code.
	@files=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$files" ]; then echo "gofmt needed on: $$files"; exit 1; fi
	go vet ./...
	$(BIN)/golangci-lint run ./...
	go mod tidy -diff
	cd $(TOOLS) && go mod tidy -diff
	cd $(TOOLS)/lint && go mod tidy -diff
	cd $(TOOLS)/buf && go mod tidy -diff
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		git status --porcelain -- $(GENERATED); \
		echo "Generated code is out of date: run 'make generate' and commit the result."; exit 1; fi

.PHONY: generate
generate: $(BIN)/controller-gen $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## Generate deepcopy code and CRDs from api/, Go code from proto/.
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd
	$(BIN)/buf lint
	find proto -name '*.pb.go' -delete
	$(BIN)/buf generate

##@ Tools (built from source; a cold build takes several minutes)

.PHONY: tools
tools: $(TOOL_BINS) ## Build the pinned Kubernetes binaries and generators into bin/.

$(addprefix $(BIN)/,$(KUBE_CMDS)): $(BIN)/%: $(TOOLS_DEPS)
	cd $(TOOLS) && go build -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$*

$(addprefix $(BIN)/,$(KWOK_CMDS)): $(BIN)/%: $(TOOLS_DEPS)
	cd $(TOOLS) && go build -ldflags '-s -w' -o $@ sigs.k8s.io/kwok/cmd/$*

$(BIN)/etcd: $(TOOLS_DEPS) $(TOOLS)/etcd/main.go
	cd $(TOOLS) && go build -ldflags '-s -w' -o $@ ./etcd

$(BIN)/controller-gen: $(TOOLS_DEPS)
	cd $(TOOLS) && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(BIN)/golangci-lint: $(TOOLS)/lint/go.mod $(TOOLS)/lint/go.sum
	cd $(TOOLS)/lint && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(BIN)/buf: $(TOOLS)/buf/go.mod $(TOOLS)/buf/go.sum
	cd $(TOOLS)/buf && go build -o $@ github.com/bufbuild/buf/cmd/buf

$(BIN)/protoc-gen-go-grpc: $(TOOLS)/buf/go.mod $(TOOLS)/buf/go.sum
	cd $(TOOLS)/buf && go build -o $@ google.golang.org/grpc/cmd/protoc-gen-go-grpc

# From the root module: the generated code must match its protobuf runtime.
$(BIN)/protoc-gen-go: go.mod go.sum
	go build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go

.PHONY: clean
clean: ## Remove bin/ (the strata home is removed by 'strata down').
	rm -rf $(BIN)

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_%\/$$()-]+:.*##/ { printf "  %-12s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
