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
# on the filesystem - boot.py is the stage 0 that `make deploy` writes and
# that chooses the OTA slot. An OTA slot (/a or /b) comes first on sys.path,
# so a signed update shadows the frozen baseline; `make deploy FROZEN=1`
# writes only boot.py and main.py and clears slot a, so the frozen code runs.
# host_tests/host/test_packaging.py checks that this list covers the tree.

# The port's start-up modules (_boot.py mounts the filesystem) and nothing
# else from the stock build: no webrepl, mip or second umqtt.simple (the
# stock build freezes micropython-lib's), which also shrinks what a node on
# a patient exposes.
freeze("$(PORT_DIR)/modules")

_version = {}
with open("firmware/version.py") as f:
    exec(f.read(), _version)
metadata(description="VitalNode wearable PPG/ECG sensor node", version=_version["VERSION"])

package("firmware")
package("umqtt", base_path="lib")
for _name in ("alerts", "dsp", "hmacsha", "max30102", "max86150", "maxfifo", "ppg", "qrs",
              "rhythm", "ring", "rsapss", "spo2"):
    module(_name + ".py", base_path="lib")
