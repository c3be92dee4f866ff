# Infrastructure targets (included by the main Makefile). Nothing here runs
# Docker; only `deploy` talks to AWS.
#
#   make lock     re-resolve requirements-lambda.lock (pyproject.toml's dependencies, for
#                 Lambda's CPython 3.13 on arm64, with hashes; installs uv into the venv)
#   make build    Lambda assets into build/ (layer: the locked arm64/cp313 wheels + qrpro)
#   make synth    build + cdk synth (cdk-nag AwsSolutions runs in the synth) + cfn-lint; stops without
#                 SHORT_DOMAIN unless ALLOW_CLOUDFRONT_DOMAIN=1 (docs/deploy.md, "The short domain")
#   make deploy   synth + the account's Lambda concurrency quota checked against the template's
#                 reservations + cdk deploy of the synthesized assembly (see docs/deploy.md)
#
# Deployment context (docs/deploy.md), e.g.
#   make deploy SHORT_DOMAIN=aqr.net SHORT_CERT_ARN=arn:aws:acm:us-east-1:... \
#        API_DOMAIN=pro.qr.abundera.ai API_CERT_ARN=arn:aws:acm:<region>:... SES_SENDER=no-reply@aqr.net

CDK ?= npx --no-install cdk
SHORT_DOMAIN ?=
SHORT_CERT_ARN ?=
API_DOMAIN ?=
API_CERT_ARN ?=
SES_SENDER ?=
SES_IDENTITY ?=
REQUIRE_USAGE_KEY ?=
EXPORT_TIMEOUT ?=
EXPORT_MEMORY_MB ?=
ALARM_EMAIL ?=
ALLOW_CLOUDFRONT_DOMAIN ?=
ACCOUNT_CONCURRENCY ?=
RESERVE_CONCURRENCY ?=
WAF ?=
CDK_CONTEXT = $(if $(SHORT_DOMAIN),-c qrpro:shortDomain=$(SHORT_DOMAIN)) \
	$(if $(SHORT_CERT_ARN),-c qrpro:shortCertificateArn=$(SHORT_CERT_ARN)) \
	$(if $(API_DOMAIN),-c qrpro:apiDomain=$(API_DOMAIN)) \
	$(if $(API_CERT_ARN),-c qrpro:apiCertificateArn=$(API_CERT_ARN)) \
	$(if $(SES_SENDER),-c qrpro:sesSender=$(SES_SENDER)) \
	$(if $(SES_IDENTITY),-c qrpro:sesIdentity=$(SES_IDENTITY)) \
	$(if $(REQUIRE_USAGE_KEY),-c qrpro:requireUsageKey=$(REQUIRE_USAGE_KEY)) \
	$(if $(EXPORT_TIMEOUT),-c qrpro:exportTimeoutSeconds=$(EXPORT_TIMEOUT)) \
	$(if $(EXPORT_MEMORY_MB),-c qrpro:exportMemoryMb=$(EXPORT_MEMORY_MB)) \
	$(if $(ALARM_EMAIL),-c qrpro:alarmEmail=$(ALARM_EMAIL)) \
	$(if $(ALLOW_CLOUDFRONT_DOMAIN),-c qrpro:allowCloudFrontDomain=true) \
	$(if $(ACCOUNT_CONCURRENCY),-c qrpro:accountConcurrency=$(ACCOUNT_CONCURRENCY)) \
	$(if $(RESERVE_CONCURRENCY),-c qrpro:reserveConcurrency=$(RESERVE_CONCURRENCY)) \
	$(if $(WAF),-c qrpro:waf=$(WAF))
DEPLOY_ARGS ?= --require-approval broadening

.PHONY: lock build synth deploy

lock: install
	test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(BIN)/python -m infra.build_assets --lock

build: install
	$(BIN)/python -m infra.build_assets

# cfn-lint exit code: bit 1 = fatal, bit 2 = errors (warnings and infos do not fail the build).
synth: build
	rm -rf cdk.out
	$(CDK) synth --no-notices --quiet $(CDK_CONTEXT)
	rc=0; $(BIN)/cfn-lint cdk.out/*.template.json || rc=$$?; \
	  if [ $$((rc & 3)) -ne 0 ]; then echo "cfn-lint: errors (exit $$rc)"; exit 1; fi

# What deploys carries bytecode for the runtime (infra/build_assets.py); QRPRO_REQUIRE_BYTECODE=0 opts out.
deploy: export QRPRO_REQUIRE_BYTECODE ?= 1
# Before CloudFormation: the template's reserved concurrency against the account's quota (infra/concurrency.py).
deploy: synth
	$(BIN)/python -m infra.concurrency cdk.out/QrPro.template.json
	$(CDK) deploy --no-notices --app cdk.out --all $(DEPLOY_ARGS)
