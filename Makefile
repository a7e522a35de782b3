# VitalNode - two commands on a fresh Linux machine: `make sim`, `make test`.
# Everything they need is installed by the rules below: Debian packages (when
# missing), a local .venv from requirements/dev.txt (pinned by hash), npm
# packages from tools/package-lock.json (tools/node_modules; the root
# package.json is mip's). The ward, provisioning, flashing and OTA targets
# install only what they run on (deps-run: requirements/run.txt, no node/npm).

SHELL := /bin/bash
PY    := .venv/bin/python
# Debian packages the host side needs, as command:package (or /file:package);
# installed only when missing (as root, or with sudo). gcc-multilib and make
# build the chip's MicroPython (1.27.0, 32-bit) from ../shared/micropython;
# postgresql and util-linux (setpriv) serve the PostgreSQL stores and tests;
# chromium and chromium-driver run the ward app's browser tests.
APT_NEEDS := python3:python3 node:nodejs npm:npm timeout:coreutils mosquitto:mosquitto \
             make:make gcc:gcc /usr/lib32/crt1.o:gcc-multilib \
             pg_ctlcluster:postgresql setpriv:util-linux \
             chromium:chromium chromedriver:chromium-driver
# what the run-time targets need: Python and, for `make ward`, mosquitto
APT_RUN := python3:python3 mosquitto:mosquitto
VM    ?= unix
T     ?=
RUNTIME ?= micropython
DURATION ?= 600
PORT  ?=
# provisioning options: CONFIG=site.json ROTATE=1 REINSTATE=1 LOCKDOWN=1 REGISTRY=path
PROVISION_OPTS = $(if $(CONFIG),--config $(CONFIG)) $(if $(ROTATE),--rotate) \
                 $(if $(REINSTATE),--reinstate) $(if $(LOCKDOWN),--lockdown)
REGISTRY_OPT = $(if $(REGISTRY),--registry $(REGISTRY))

.PHONY: help apt apt-run deps deps-run requirements micropython test test-compile test-cpython test-unix test-frozen vmtest sim emu bench \
        deploy provision verify revoke registry need-port clean ota-key ota-bundle ota-verify ota-serve \
        ota-push campaign flash ward ward-user need-user ward-bench site loadtest soak export

# help text: the `## ` lines directly above each rule (tools/makehelp.py);
# every .PHONY target has some, except these prerequisites of other rules
HELPERS := apt apt-run need-port need-user

## this list (generated from the Makefile's `## ` lines)
help:
	@python3 tools/makehelp.py $(firstword $(MAKEFILE_LIST))

## only install what the other targets need: Debian packages, .venv,
## tools/node_modules, lib/umqtt (pinned by sha256), pyright's stubs, MicroPython
deps: apt .venv/.installed tools/node_modules/.installed lib/umqtt/.pinned .cache/mpstubs/.installed micropython

# MicroPython 1.27's ESP32 type stubs for pyright (pinned by hash), kept off
# CPython's path: make test's compile layer types the device code with them
.cache/mpstubs/.installed: requirements/mpstubs.txt .venv/.installed
	@rm -rf .cache/mpstubs
	@set -o pipefail; .venv/bin/pip install -q --disable-pip-version-check --no-deps --require-hashes \
	    --target .cache/mpstubs -r requirements/mpstubs.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $@

# the chip's MicroPython for this host (tools/mpbuild.py; cached in .cache,
# rebuilt only when an input changes)
## build the chip's MicroPython 1.27.0 (32-bit unix port, plain and frozen)
micropython: apt .venv/.installed lib/umqtt/.pinned
	@$(PY) -m tools.mpbuild all >/dev/null

# the run-time targets (ward, gateway, provisioning, flashing, OTA): their
# Python packages only, no node/npm, no MicroPython build
## only what the run-time targets need (requirements/run.txt; no node/npm)
deps-run: apt-run .venv/.run-installed lib/umqtt/.pinned

# device libraries fetched from PyPI, pinned by sha256 (tools/deps.py)
lib/umqtt/.pinned: tools/deps.py .venv/.run-installed
	@$(PY) -m tools.deps

apt:
	@tools/ensure-apt.sh $(APT_NEEDS)

apt-run:
	@tools/ensure-apt.sh $(APT_RUN)

# requirements/run.txt: what the run-time targets import; dev.txt: that and
# what tests, benchmarks, the simulator and lint need. Both are compiled from
# their .in files (the direct dependencies) with every package pinned by
# hash, and installed with --require-hashes.
PIP_INSTALL = set -o pipefail; .venv/bin/pip install -q --disable-pip-version-check --require-hashes
PIP_QUIET = 2>&1 | { grep -v "is ignored: it is neither" || true; }

.venv/.run-installed: requirements/run.txt
	@test -x .venv/bin/python || python3 -m venv .venv
	@echo "installing the pinned run-time packages into .venv"
	@$(PIP_INSTALL) -r requirements/run.txt $(PIP_QUIET)
	@touch $@

.venv/.installed: requirements/dev.txt .venv/.run-installed
	@echo "installing the pinned development packages into .venv"
	@$(PIP_INSTALL) -r requirements/dev.txt $(PIP_QUIET)
	@touch $@

# after editing requirements/*.in: pin and hash again (pip-tools in a venv of
# its own under .cache; versions already pinned stay unless the .in asks)
PIP_TOOLS = .cache/piptools/bin/pip-compile -q --generate-hashes --strip-extras --no-header \
            --no-emit-index-url --no-emit-find-links
## after editing requirements/*.in: pin and hash run.txt and dev.txt again
requirements:
	@test -x .cache/piptools/bin/pip-compile || { python3 -m venv .cache/piptools && \
	    .cache/piptools/bin/pip install -q --disable-pip-version-check pip-tools==7.7.0; }
	@cd requirements && ../$(PIP_TOOLS) -o run.txt run.in && ../$(PIP_TOOLS) -o dev.txt dev.in

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	@npm ci --prefix tools --no-audit --no-fund --loglevel=error
	@touch $@

## all four test layers: compile, then cpython (4 xdist workers;
## VITALNODE_TEST_WORKERS=n) beside unix and frozen; 4-5 min
test: deps
	@$(PY) -m tools.testall

## layer 1: mpy-cross, the ESP32 import rules, ruff over the tree,
## pyright over the device code
test-compile: deps
	@$(PY) -m tools.compile_check --lint

## layer 2: pytest over host_tests [VITALNODE_TEST_WORKERS=4]
test-cpython: deps
	@$(PY) -m pytest -q -n $(or $(VITALNODE_TEST_WORKERS),4) --dist loadfile host_tests

## layer 3: the device tests on the 32-bit unix build [T=file]
test-unix: deps
	@$(PY) -m tools.vmtest --vm unix $(T)

## layer 4: the device tests on the frozen 32-bit build [T=file]
test-frozen: deps
	@$(PY) -m tools.vmtest --vm frozen $(T)

## T=host_tests/device/test_x.py [VM=unix|frozen|all|wasm|unix64]
## one test file on a VM, verbose
vmtest: deps
	@$(PY) -m tools.vmtest --vm $(VM) -v $(T)

SIM_OPTS = $(if $(RECORD),--record $(RECORD)) $(if $(PPG),--ppg $(PPG)) $(if $(CHIP),--chip $(CHIP)) \
           $(if $(FAULTS),--faults $(FAULTS)) $(if $(NODES),--nodes $(NODES)) \
           $(if $(REALTIME),--realtime) $(if $(HEAP),--heap $(HEAP)) $(if $(FROZEN),--frozen) \
           $(if $(VM),--vm $(VM)) $(if $(TIMING),--timing $(TIMING)) $(if $(OUTAGE),--outage $(OUTAGE)) \
           $(if $(WARD),--ward) $(if $(POWER_SAVE),--power-save $(POWER_SAVE)) \
           $(if $(BATTERY),--battery-pct $(BATTERY)) $(if $(BATTERY_MAH),--battery-mah $(BATTERY_MAH))

# Ctrl-C: the tool stops what it started and says so on one line (exit status 130);
# make adds no "Error 130" line of its own
QUIET_CTRL_C = || { rc=$$?; [ $$rc = 130 ] || exit $$rc; }

## the whole node simulated: firmware on the unix port, mosquitto, gateway
## [DURATION=600 RUNTIME=micropython|cpython RECORD=100 PPG=01
##  CHIP=max86150|max30102 FAULTS=none|all|broker,wifi,finger,motion
##  NODES=1 REALTIME=1 HEAP=112K FROZEN=1 TIMING=typical|worst OUTAGE=s
##  WARD=1: at real time with the ward web app up
##  POWER_SAVE=on|off: the nodes' config power.save, default on
##  BATTERY=pct [BATTERY_MAH=500]: a battery monitor and a simulated LiPo]
## -> build/sim/summary.json, PNG (with supply current over time), FHIR
sim: deps
	@$(PY) -m tools.sim --runtime $(RUNTIME) --duration $(DURATION) $(SIM_OPTS) $(QUIET_CTRL_C)

## benchmarks on the VMs -> build/bench/results.json
bench: deps
	@$(PY) -m tools.bench all

## emulated USB device (prints its pty; use mpremote connect <pty>)
emu: deps
	@$(PY) -m tools.emu --flash build/emu-flash

need-port:
	@test -n "$(PORT)" || { echo "set PORT: the node's serial port, e.g. PORT=/dev/ttyUSB0"; exit 2; }

## PORT=p FIRMWARE=f.bin [ERASE=0 CHECK=1 BAUD=460800]
## check the MicroPython image, then esptool: detect, erase, write, verify
flash: deps-run
	@test -n "$(FIRMWARE)" || { echo "set FIRMWARE: the MicroPython .bin from https://micropython.org/download/ESP32_GENERIC/"; exit 2; }
	@$(PY) -m tools.flash --firmware $(FIRMWARE) $(if $(PORT),--port $(PORT)) \
	    $(if $(filter 0,$(ERASE)),--no-erase) $(if $(CHECK),--check) $(if $(BAUD),--baud $(BAUD))

## PORT=p [FROZEN=1]  compile the device tree and copy what changed to the
## board (FROZEN=1: the firmware is frozen in the image; boot.py, main.py only)
deploy: deps-run need-port
	@$(PY) -m tools.deploy --port $(PORT) $(if $(FROZEN),--frozen)

## PORT=p [CONFIG=site.json ROTATE=1 REINSTATE=1 LOCKDOWN=1 REGISTRY=f]
## give the node its key and config; record it in the registry
provision: deps-run need-port
	@$(PY) -m tools.provision $(REGISTRY_OPT) provision --port $(PORT) $(PROVISION_OPTS)

## PORT=p  challenge-response: the node still holds its registered key
verify: deps-run need-port
	@$(PY) -m tools.provision $(REGISTRY_OPT) verify --port $(PORT)

## DEVICE=id [REASON=...]  the gateway rejects the device from now on
revoke: deps-run
	@test -n "$(DEVICE)" || { echo "set DEVICE: the device id to revoke"; exit 2; }
	@$(PY) -m tools.provision $(REGISTRY_OPT) revoke $(DEVICE) --reason "$(REASON)"

## list the registered devices [REGISTRY=f]
registry: deps-run
	@$(PY) -m tools.provision $(REGISTRY_OPT) list

## OUT=dir SSID=s WIFI_PASSWORD=p BROKER=host[:port] [FORCE=1]  a site for your
## network (CA, OTA key, site.json; checked by the firmware's config rules)
site: deps-run
	@test -n "$(OUT)" -a -n "$(SSID)" -a -n "$(BROKER)" || { echo "set OUT, SSID and BROKER (WIFI_PASSWORD for WPA2)"; exit 2; }
	@$(PY) -m tools.provision $(REGISTRY_OPT) site --out $(OUT) --ssid "$(SSID)" --wifi-password "$(WIFI_PASSWORD)" --broker $(BROKER) $(if $(FORCE),--force)

## [CONFIG=site.json LISTEN=0.0.0.0 REGISTRY=f]  mosquitto (TLS, ACL) and the
## gateway for real nodes on your network; logins follow the registry
## [APP_PORT=8443 ESCALATE=120 NOTIFY=url]  and the ward web app over HTTPS
ward: deps-run
	@$(PY) -m tools.ward $(if $(CONFIG),--site $(CONFIG)) $(REGISTRY_OPT) $(if $(LISTEN),--listen $(LISTEN)) \
	    $(if $(APP_PORT),--app-port $(APP_PORT)) $(if $(ESCALATE),--escalate-after $(ESCALATE)) \
	    $(if $(NOTIFY),--notify-url $(NOTIFY)) $(QUIET_CTRL_C)

## OUT=f.json [DB=build/ward/gateway.sqlite PATIENT=p FORCE=1 | FHIR_URL=u]
## the stored vitals as a FHIR R4 Bundle (a file, or POSTed to FHIR_URL)
export: deps-run
	@test -n "$(OUT)$(FHIR_URL)" || { echo "set OUT=bundle.json (or FHIR_URL=https://ehr/fhir); DB= the store (default build/ward/gateway.sqlite)" >&2; exit 2; }
	@$(PY) -m tools.gateway export --db "$(or $(DB),build/ward/gateway.sqlite)" $(if $(OUT),--out "$(OUT)") \
	    $(if $(FHIR_URL),--fhir-url "$(FHIR_URL)") $(if $(PATIENT),--patient "$(PATIENT)") $(if $(FORCE),--force)

need-user:
	@test -n "$(NAME)" -a -n "$(ROLE)" || { echo "set NAME and ROLE (clinician|technician|admin|auditor; clinicians: WARDS=W3,W5)" >&2; exit 2; }

## NAME=n ROLE=clinician|technician|admin|auditor [WARDS=W3,W5 DB=f]
## a ward app user; prints their one-time password
ward-user: need-user deps-run
	@$(PY) -m tools.wardapp user add --name "$(NAME)" --role "$(ROLE)" $(if $(WARDS),--ward "$(WARDS)") $(if $(DB),--db $(DB))

BUNDLE ?= build/ota/bundle
HTTP_PORT ?= 8070
OTA_BUILD_OPTS = $(if $(KEY),--key $(KEY)) $(if $(VERSION),--version $(VERSION)) \
                 $(if $(COUNTER),--counter $(COUNTER)) $(if $(IMAGE),--image $(IMAGE)) \
                 $(if $(DAYS),--days $(DAYS)) $(if $(BOUND),--bound) \
                 $(foreach d,$(DEVICES),--device $(d))

## OUT=dir  new RSA-3072 OTA signing key pair
ota-key: deps-run
	@test -n "$(OUT)" || { echo "set OUT: the folder for ota_private.pem / ota_public.pem"; exit 2; }
	@$(PY) -m tools.ota keygen --out $(OUT)

## [VERSION=x.y.z COUNTER=n KEY=pem IMAGE=bin BOUND=1 DEVICES='id ..' DAYS=90
##  BUNDLE=dir]  (BOUND=1: only the DEVICES named in the signed manifest)
## build and sign an update from this tree (default BUNDLE=build/ota/bundle)
ota-bundle: deps-run
	@$(PY) -m tools.ota build --out $(BUNDLE) $(OTA_BUILD_OPTS)

## [BUNDLE=dir PUBKEY=pem]  check a bundle as a node would
ota-verify: deps-run
	@$(PY) -m tools.ota verify $(BUNDLE) $(if $(PUBKEY),--pubkey $(PUBKEY))

## [BUNDLE=dir HTTP_PORT=8070 REGISTRY=f]  serve it to nodes
ota-serve: deps-run
	@$(PY) -m tools.ota serve $(BUNDLE) --port $(HTTP_PORT) $(REGISTRY_OPT)

## PORT=p URL=u [DEADLINE=300]  the node on USB updates itself from the server
## at u; the whole download ends within DEADLINE seconds
ota-push: deps-run need-port
	@test -n "$(URL)" || { echo "set URL: the update server as the node reaches it"; exit 2; }
	@$(PY) -m tools.ota push --port $(PORT) --url $(URL) $(if $(DEADLINE),--deadline $(DEADLINE))

## [NODES=200 SECONDS=20]  the overview's responsiveness with many nodes
## -> build/wardapp/bench.json
ward-bench: deps
	@$(PY) -m tools.wardapp.bench --nodes $(or $(NODES),200) $(if $(SECONDS),--seconds $(SECONDS))

OUTAGES ?= 60
SEED ?= 1
## [OUTAGES=60 SEED=1 TIMING=typical|worst]  telemetry outage campaign vs a real
## mosquitto -> build/campaign/telemetry.json; then the security attack classes
## (issue 19) -> build/campaign/security.json
campaign: deps
	@$(PY) -m tools.campaign --outages $(OUTAGES) --seed $(SEED) $(if $(TIMING),--timing $(TIMING))

HOURS ?= 24
## [HOURS=24 SEED=1 FROZEN=1 TIMING=typical|worst QUIET=1]  a day on the patient:
## faults, resets, OTA; build/soak/summary.json (docs/soak.md)
soak: deps
	@$(PY) -m tools.soak --hours $(HOURS) --seed $(SEED) $(if $(FROZEN),--frozen) \
		$(if $(TIMING),--timing $(TIMING)) $(if $(QUIET),--quiet)

LOADTEST_S ?= 60
## [NODES=2000 LOADTEST_S=60]  simulated nodes over TLS MQTT, gateway workers
## on SQLite and PostgreSQL -> build/loadtest/summary.json
loadtest: deps
	@$(PY) -m tools.gateway.loadtest --nodes $(or $(NODES),2000) --seconds $(LOADTEST_S)

## remove build/ (keeps .venv, tools/node_modules, .cache)
clean:
	rm -rf build
