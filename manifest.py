# manifest.py - freeze VitalNode into a MicroPython ESP32 build.
#
#   make deps                 # fetches the pinned umqtt.simple into lib/umqtt
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC BOARD_VARIANT=OTA FROZEN_MANIFEST=/path/to/vitalnode/manifest.py
#
# Frozen bytecode runs from flash, so the ~70 KB of application bytecode no
# longer costs heap. Frozen: the firmware package, every device library in
# lib/ and the pinned umqtt.simple (the same file the tests run, not
# micropython-lib's current one). Not frozen: boot.py and main.py, which stay
# on the filesystem - boot.py runs stage0, which chooses the OTA slot. An OTA slot (/a or /b) comes first on sys.path,
# so a signed update shadows the frozen baseline; `make deploy FROZEN=1`
# writes only boot.py and main.py and clears slot a, so the frozen code runs.
# host_tests/host/test_packaging.py checks that this list covers the tree.

# The port's start-up modules (_boot.py mounts the filesystem) and, from
# the stock build's micropython-lib, only `ssl` (since MicroPython 1.23 a
# Python wrapper over the C module `tls`; the stock ESP32 manifest pulls it
# in through bundle-networking): no webrepl, mip or second umqtt.simple,
# which also shrinks what a node on a patient exposes.
# tools/vm/unix_manifest.py includes this file with port_modules=False for
# the simulator's frozen 32-bit unix build (its harness mounts the flash).
options.defaults(port_modules=True)
if options.port_modules:
    freeze("$(PORT_DIR)/modules")
require("ssl")

_version = {}
with open("firmware/version.py") as f:
    exec(f.read(), _version)
metadata(description="VitalNode wearable PPG/ECG sensor node", version=_version["VERSION"])

module("stage0.py")  # the stage 0 that boot.py runs: frozen, it costs no heap
module("nvsrec.py")  # stage 0 too: the OTA state and the key are NVS records
package("firmware")
package("umqtt", base_path="lib")
for _name in ("alertcfg", "alerts", "battery", "dsp", "hmacsha", "max30102", "max86150", "maxfifo", "ppg", "qrs",
              "rhythm", "ring", "rsapss", "spo2"):
    module(_name + ".py", base_path="lib")
