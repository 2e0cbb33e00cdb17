# certbridge — every target a fresh clone needs. `make test` builds or reuses the
# control-plane binaries (pinned, built from Go modules, cached outside the clone).

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
export GOTOOLCHAIN := local

KUBERNETES_VERSION := v1.36.2
ETCD_VERSION := v3.6.16
CONTROLLER_GEN_VERSION := v0.23.0
HELM_VERSION := v3.22.0
PEBBLE_VERSION := v2.10.1
# promtool of Prometheus v3.16.0 (its Go module is v0.316.0), for the chart's alert rules.
PROMTOOL_VERSION := v0.316.0
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/certbridge
# "-stamped": built with the version below, so `kubectl version` and the
# API server's /version say v1.36.2 (unstamped: v0.0.0-master+$Format:%H$).
KUBE_DIR := $(CACHE_DIR)/kubernetes-$(KUBERNETES_VERSION)-stamped
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBERNETES_VERSION)))
KUBE_LDFLAGS := $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(pkg).gitVersion=$(KUBERNETES_VERSION) -X $(pkg).gitMajor=1 -X $(pkg).gitMinor=$(KUBE_MINOR) -X $(pkg).gitTreeState=clean)
ETCD_DIR := $(CACHE_DIR)/etcd-$(ETCD_VERSION)
CONTROLLER_GEN := $(CACHE_DIR)/controller-gen-$(CONTROLLER_GEN_VERSION)/controller-gen
HELM_DIR := $(CACHE_DIR)/helm-$(HELM_VERSION)
PEBBLE_DIR := $(CACHE_DIR)/pebble-$(PEBBLE_VERSION)
# "-nosd": built without service discovery, which rule checks and tests do
# not use (Prometheus's remove_all_sd tag): a fraction of the compile.
PROMTOOL_DIR := $(CACHE_DIR)/promtool-$(PROMTOOL_VERSION)-nosd

export TEST_ASSET_KUBE_APISERVER := $(KUBE_DIR)/kube-apiserver
export TEST_ASSET_KUBECTL := $(KUBE_DIR)/kubectl
export TEST_ASSET_ETCD := $(ETCD_DIR)/etcd
export TEST_ASSET_HELM := $(HELM_DIR)/helm
export TEST_ASSET_PEBBLE := $(PEBBLE_DIR)/pebble
export TEST_ASSET_PROMTOOL := $(PROMTOOL_DIR)/promtool
# The local cluster runs kube-controller-manager; its node (make e2e-node)
# kubelet, kube-proxy and kube-scheduler. All four build in one go build.
export TEST_ASSET_KUBE_CONTROLLER_MANAGER := $(KUBE_DIR)/kube-controller-manager
export TEST_ASSET_KUBELET := $(KUBE_DIR)/kubelet
export TEST_ASSET_KUBE_PROXY := $(KUBE_DIR)/kube-proxy
export TEST_ASSET_KUBE_SCHEDULER := $(KUBE_DIR)/kube-scheduler
KUBE_NODE_TOOLS := $(TEST_ASSET_KUBE_CONTROLLER_MANAGER) $(TEST_ASSET_KUBELET) $(TEST_ASSET_KUBE_PROXY) $(TEST_ASSET_KUBE_SCHEDULER)
# The node's runtime, from Debian (bookworm), installed when missing; the
# upstream versions it is tested with (README, Compatibility).
NODE_DEBS := containerd:1.6.20 runc:1.1.5 containernetworking-plugins:1.1.1 iptables:1.8.9

BIN_DIR ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-unknown)
LDFLAGS := -s -w -X github.com/certbridge/certbridge/internal/version.Version=$(VERSION)
# One command builds every certbridge binary: make build, the Dockerfile (which
# runs make build) and make image. -trimpath and -buildvcs=false keep paths and
# the work tree's state (an untracked file) out of it, so the same commit
# gives the same bytes.
GO_BUILD = CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'

# make image names the image as the chart's defaults do (image.repository, and
# image.tag's default, the chart's appVersion), so a loaded tarball is what
# helm install pulls. Its digest depends on neither name.
IMAGE_REPO ?= ghcr.io/certbridge/certbridge
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/certbridge/Chart.yaml)
IMAGE_DIR ?= $(BIN_DIR)/image
IMAGE_SOURCE := https://github.com/certbridge/certbridge
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's time stamps the image, so the digest does not change with the day.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
GO_TEST_FLAGS ?= -race -count=1
# The end-to-end tests and the demo run the binary `make build` makes.
export CERTBRIDGE_BINARY := $(abspath $(BIN_DIR))/certbridge

.PHONY: all build image image-amd64 image-push test fuzz e2e e2e-node node-deps demo verify generate tools env conformance-live bench sim clean-tools help

all: build

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/certbridge with the version stamped in
	$(GO_BUILD) -o $(BIN_DIR)/certbridge .

# No container engine: the binaries are cross-compiled and hack/image lays
# them on an empty base with go-containerregistry.
IMAGE_ARCHS ?= amd64 arm64
image: ## build linux/amd64 + linux/arm64 images without a container engine: bin/image/oci (OCI layout), bin/image/*.tar (docker load, kind load)
	$(foreach a,$(IMAGE_ARCHS),GOOS=linux GOARCH=$(a) $(GO_BUILD) -o $(IMAGE_DIR)/linux_$(a)/certbridge . &&) true
	@go run ./hack/image build --dir $(IMAGE_DIR) --name $(IMAGE_REPO):$(IMAGE_TAG) \
	  --version $(VERSION) --revision $(REVISION) --source $(IMAGE_SOURCE) --source-date-epoch $(SOURCE_DATE_EPOCH) \
	  $(foreach a,$(IMAGE_ARCHS),linux/$(a)=$(IMAGE_DIR)/linux_$(a)/certbridge)

image-amd64: ## make image for linux/amd64 alone (the same certbridge-linux-amd64.tar; the OCI layout then holds one platform)
	@$(MAKE) --no-print-directory image IMAGE_ARCHS=amd64

image-push: ## make image, then push both platforms and their SBOMs: make image-push IMAGE=<registry>/<repository>:<tag>
	@test -n "$(IMAGE)" || { echo "set IMAGE=<registry>/<repository>:<tag> to push to, e.g. make image-push IMAGE=registry.example.com/certbridge:$(IMAGE_TAG)"; exit 1; }
	@$(MAKE) --no-print-directory image
	@go run ./hack/image push --dir $(IMAGE_DIR) $(IMAGE)

test: tools build ## run every test: unit, simulators, conformance, chart checks (real kube-apiserver + etcd), then make e2e and make e2e-node
	@mkdir -p $(BIN_DIR)
	@status=0; \
	  go test $(GO_TEST_FLAGS) -v ./... 2>&1 | tee $(BIN_DIR)/.test.log || status=1; \
	  $(MAKE) --no-print-directory e2e 2>&1 | tee -a $(BIN_DIR)/.test.log || status=1; \
	  $(MAKE) --no-print-directory e2e-node 2>&1 | tee -a $(BIN_DIR)/.test.log || status=1; \
	  echo "$$(grep -cE -- '--- PASS' $(BIN_DIR)/.test.log) passed, $$(grep -cE -- '--- FAIL' $(BIN_DIR)/.test.log) failed, $$(grep -cE -- '--- SKIP' $(BIN_DIR)/.test.log) skipped"; \
	  exit $$status

# go test fuzzes one target at a time, so make fuzz runs them one after
# another, each for FUZZTIME. The targets are every `func Fuzz…` in a test
# file, so a new one is picked up; their seed corpora (testdata/fuzz) run
# in make test as plain tests. A failing target writes its input under its
# package's testdata/fuzz/<FuzzName>/: commit it with the fix.
# FUZZFLAGS passes more go test flags, e.g. -parallel=1 on a busy machine.
FUZZTIME ?= 30s
FUZZFLAGS ?=
fuzz: tools ## run every fuzz target for FUZZTIME each (default 30s), one after another: make fuzz FUZZTIME=60s
	@mkdir -p $(BIN_DIR)
	@targets=$$(grep -Ho '^func Fuzz[A-Za-z0-9_]*' $$(git ls-files --cached --others --exclude-standard '*_test.go') | sed 's/:func / /'); \
	  test -n "$$targets" || { echo "no fuzz targets found"; exit 1; }; \
	  : > $(BIN_DIR)/.fuzz.log; status=0; summary=""; \
	  while read -r file name; do \
	    pkg=./$$(dirname $$file); echo "== $$name in $$pkg for $(FUZZTIME)"; \
	    if go test $(FUZZFLAGS) -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1 | tee $(BIN_DIR)/.fuzz.one; then result=ok; else result=FAIL; status=1; fi; \
	    cat $(BIN_DIR)/.fuzz.one >> $(BIN_DIR)/.fuzz.log; \
	    execs=$$(grep -o 'execs: [0-9]*' $(BIN_DIR)/.fuzz.one | tail -1 | cut -d' ' -f2); \
	    summary="$$summary$$(printf '%-28s %-24s %4s %12s execs' $$name $$pkg $$result $${execs:-?})\n"; \
	  done <<< "$$targets"; \
	  rm -f $(BIN_DIR)/.fuzz.one; printf "\n$$summary"; exit $$status

# The end-to-end tests, the demo and `make verify`'s vet build with the same
# settings (CGO_ENABLED=0, -trimpath, -tags e2e) so that a cold run compiles
# cert-manager's dependency tree once for all three.
E2E_GO := CGO_ENABLED=0 GOFLAGS=-trimpath
e2e: tools build ## end-to-end: cert-manager's controllers, Pebble, the chart, webhook and issuer on a local kube-apiserver; scenarios a-m, the garbage run and the demo
	$(E2E_GO) go test -tags e2e -count=1 -v -timeout 25m ./test/e2e/

# The node scenarios (test/node): make image's image on kubelet + containerd,
# the chart installed with helm install. Root, for containerd, the bridge and
# iptables. NODE_RUN=<regexp> runs some of them (go test -run); NODE_HOLD=10m
# keeps a failed run's node up that long, to look inside.
e2e-node: tools node-deps build image-amd64 ## the chart installed with helm from make image's image on a real node (kubelet, containerd, kube-proxy): scenarios a-h
	CERTBRIDGE_IMAGE_ARCHIVE=$(abspath $(IMAGE_DIR))/certbridge-linux-amd64.tar CERTBRIDGE_IMAGE=$(IMAGE_REPO):$(IMAGE_TAG) CERTBRIDGE_NODE_HOLD=$(NODE_HOLD) \
	  $(E2E_GO) go test -tags e2e -count=1 -v -timeout 20m $(if $(NODE_RUN),-run '$(NODE_RUN)') ./test/node/

node-deps: ## install the node's runtime from Debian when missing: containerd, runc, the CNI plugins, iptables
	@missing=""; for p in $(NODE_DEBS); do name=$${p%%:*}; want=$${p#*:}; \
	  have=$$(dpkg-query -W -f '$${Version}' $$name 2>/dev/null || true); \
	  case "$$have" in "") missing="$$missing $$name";; $$want[~+-]*) ;; *) echo "$$name $$have is installed; the node is tested with $$want (README, Compatibility)"; exit 1;; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# make demo runs certbridge in pods on the local node (root; about 1.5 minutes
# warm); NODE= runs it as local processes instead, without root.
NODE ?= 1
demo: tools build $(if $(NODE),node-deps image-amd64) ## start the local environment with certbridge in pods on a real node, issue a wildcard and an Origin CA certificate, and stay up (ONCE=1 exits; NODE= runs certbridge as local processes, without root)
	$(if $(NODE),CERTBRIDGE_IMAGE_ARCHIVE=$(abspath $(IMAGE_DIR))/certbridge-linux-amd64.tar CERTBRIDGE_IMAGE=$(IMAGE_REPO):$(IMAGE_TAG)) \
	  $(E2E_GO) go run -tags e2e ./test/localcluster/cmd/demo $(if $(ONCE),--once) $(if $(NODE),--node)

generate: $(CONTROLLER_GEN) ## regenerate the issuer API's deepcopy functions and CRDs, the chart values' descriptions (schema, docs/configuration.md), the flags tables (docs/configuration.md, from the commands), and the README's bench headline (from BENCHMARKS.md)
	$(CONTROLLER_GEN) object paths=./issuer/api/...
	$(CONTROLLER_GEN) crd paths=./issuer/api/... output:crd:dir=charts/certbridge/files/crds
	go run ./hack/chartdoc --chart charts/certbridge --doc docs/configuration.md
	go run ./hack/flagdoc --doc docs/configuration.md
	go run ./hack/benchdoc --from BENCHMARKS.md README.md

$(CONTROLLER_GEN):
	@mkdir -p $(dir $(CONTROLLER_GEN))
	cd hack/tools/controller-gen && CGO_ENABLED=0 go build -trimpath -o $@.tmp sigs.k8s.io/controller-tools/cmd/controller-gen
	mv $@.tmp $@

# vet runs with the build's settings (CGO_ENABLED=0, -trimpath) so that it and
# `make build` compile the dependency tree once between them. Generated files
# must equal what `make generate` makes from their sources.
verify: generate ## gofmt, go vet, go.mod tidy, generated files unchanged, no production import of test/
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	CGO_ENABLED=0 go vet -trimpath -tags e2e ./...
	go mod tidy -diff
	cd hack/tools/kube && go mod tidy -diff
	cd hack/tools/etcd && go mod tidy -diff
	cd hack/tools/controller-gen && go mod tidy -diff
	cd hack/tools/helm && go mod tidy -diff
	cd hack/tools/pebble && go mod tidy -diff
	cd hack/tools/promtool && go mod tidy -diff
	@out=$$(go list -f '{{.ImportPath}} {{join .Deps " "}}' $$(go list ./... | grep -v '/test/') | \
	  awk '{for (i = 2; i <= NF; i++) if ($$i ~ /^github.com\/certbridge\/certbridge\/test\//) print "  " $$1 " imports " $$i}'); \
	  if [ -n "$$out" ]; then echo "production packages must not import the test harness under test/:"; echo "$$out"; exit 1; fi
	@git diff --exit-code --stat -- issuer/api charts/certbridge/files/crds charts/certbridge/values.schema.json docs/configuration.md README.md || { echo "generated files are stale: run make generate and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- charts/certbridge/files/crds); if [ -n "$$untracked" ]; then echo "generated but not committed: $$untracked"; exit 1; fi

tools: $(TEST_ASSET_KUBE_APISERVER) $(TEST_ASSET_KUBECTL) $(KUBE_NODE_TOOLS) $(TEST_ASSET_ETCD) $(TEST_ASSET_HELM) $(TEST_ASSET_PEBBLE) $(TEST_ASSET_PROMTOOL) ## build the pinned Kubernetes binaries, etcd, helm, Pebble and promtool once

# k8s.io/kubernetes replaces its staging modules with relative paths, so
# `go install` refuses it; hack/tools/kube pins each staging module instead.
# The cache path carries the version, so a binary there is never stale; the
# tools' go.mod is no prerequisite (a fresh clone's mtimes would force a rebuild).
$(KUBE_DIR)/%:
	@mkdir -p $(KUBE_DIR)
	@echo "building $* $(KUBERNETES_VERSION) into $(KUBE_DIR) (once; a few minutes on 2 cores)"
	cd hack/tools/kube && CGO_ENABLED=0 go build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@.tmp k8s.io/kubernetes/cmd/$*
	mv $@.tmp $@

# One go build for the four: they share most of their packages.
$(KUBE_NODE_TOOLS) &:
	@mkdir -p $(KUBE_DIR)/.node.tmp
	@echo "building kube-controller-manager, kubelet, kube-proxy, kube-scheduler $(KUBERNETES_VERSION) into $(KUBE_DIR) (once; several minutes on 2 cores)"
	cd hack/tools/kube && CGO_ENABLED=0 go build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(KUBE_DIR)/.node.tmp/ \
	  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler
	mv $(KUBE_DIR)/.node.tmp/* $(KUBE_DIR)/ && rmdir $(KUBE_DIR)/.node.tmp

$(TEST_ASSET_ETCD):
	@mkdir -p $(ETCD_DIR)
	@echo "building etcd $(ETCD_VERSION) into $(ETCD_DIR) (once)"
	cd hack/tools/etcd && CGO_ENABLED=0 go build -trimpath -o $@.tmp go.etcd.io/etcd/server/v3
	mv $@.tmp $@

$(TEST_ASSET_HELM):
	@mkdir -p $(HELM_DIR)
	@echo "building helm $(HELM_VERSION) into $(HELM_DIR) (once)"
	cd hack/tools/helm && CGO_ENABLED=0 go build -trimpath -o $@.tmp helm.sh/helm/v3/cmd/helm
	mv $@.tmp $@

$(TEST_ASSET_PEBBLE):
	@mkdir -p $(PEBBLE_DIR)
	@echo "building pebble $(PEBBLE_VERSION) into $(PEBBLE_DIR) (once)"
	cd hack/tools/pebble && CGO_ENABLED=0 go build -trimpath -o $@.tmp github.com/letsencrypt/pebble/v2/cmd/pebble
	mv $@.tmp $@

# promtool checks the chart's PrometheusRule and runs its unit tests
# (charts/testdata/alerts_test.yaml). Prometheus's module is large: the first
# build takes several minutes on 2 cores.
$(TEST_ASSET_PROMTOOL):
	@mkdir -p $(PROMTOOL_DIR)
	@echo "building promtool $(PROMTOOL_VERSION) into $(PROMTOOL_DIR) (once)"
	cd hack/tools/promtool && CGO_ENABLED=0 go build -trimpath -tags remove_all_sd -o $@.tmp github.com/prometheus/prometheus/cmd/promtool
	mv $@.tmp $@

env: tools ## print the exports that let `go test` run single tests: eval "$$(make -s env)"
	@echo "export GOTOOLCHAIN=local TEST_ASSET_ETCD=$(TEST_ASSET_ETCD) TEST_ASSET_KUBE_APISERVER=$(TEST_ASSET_KUBE_APISERVER) TEST_ASSET_KUBECTL=$(TEST_ASSET_KUBECTL) TEST_ASSET_HELM=$(TEST_ASSET_HELM) TEST_ASSET_PEBBLE=$(TEST_ASSET_PEBBLE) TEST_ASSET_PROMTOOL=$(TEST_ASSET_PROMTOOL) TEST_ASSET_KUBE_CONTROLLER_MANAGER=$(TEST_ASSET_KUBE_CONTROLLER_MANAGER) TEST_ASSET_KUBELET=$(TEST_ASSET_KUBELET) TEST_ASSET_KUBE_PROXY=$(TEST_ASSET_KUBE_PROXY) TEST_ASSET_KUBE_SCHEDULER=$(TEST_ASSET_KUBE_SCHEDULER) CERTBRIDGE_BINARY=$(CERTBRIDGE_BINARY)"

conformance-live: tools ## conformance against real accounts: CLOUDFLARE_API_TOKEN and/or ALIBABA_CLOUD_ACCESS_KEY_ID+_SECRET, with TEST_ZONE_NAME
	@test -n "$${TEST_ZONE_NAME:-}" || { echo "set TEST_ZONE_NAME (a zone in the account of the credentials)"; exit 1; }
	@test -n "$${CLOUDFLARE_API_TOKEN:-}$${ALIBABA_CLOUD_ACCESS_KEY_ID:-}" || { echo "set CLOUDFLARE_API_TOKEN, or ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET"; exit 1; }
	CERTBRIDGE_CONFORMANCE_LIVE=1 go test -count=1 -v -run 'TestConformance/cloudflare-live|TestConformanceLiveAliDNS' ./solver/

bench: tools build ## API calls per challenge (ours vs cert-manager's in-tree Cloudflare solver), the quota (alone, a renewal that reaches it, hostile neighbours), webhook RSS, issuer throughput, faults across webhook processes; writes BENCHMARKS.md and the README's headline (BENCH_FLAGS, e.g. -scale 1 -runs 5)
	go run ./test/bench $(BENCH_FLAGS)
	go run ./hack/benchdoc --from BENCHMARKS.md README.md

sim: ## run the simulators on loopback and print their addresses
	go run ./test/sim/cmd/sim

clean-tools: ## forget the cached tool binaries
	rm -rf $(KUBE_DIR) $(ETCD_DIR) $(HELM_DIR) $(PEBBLE_DIR) $(PROMTOOL_DIR) $(dir $(CONTROLLER_GEN))
