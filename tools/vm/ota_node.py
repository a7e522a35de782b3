"""A simulated node fetching an OTA bundle over the network on MicroPython
(unix port: real socket): `micropython tools/vm/ota_node.py URL N_FILE NOW
[URL2]` (N_FILE holds the public modulus in hex: an argument of 768
characters kills this unix-port build with "uncaught NLR"). The node starts
with slot a confirmed at firmware/version.py's version; it installs from
URL, boots the trial, confirms; with URL2 it then tries that bundle too. Prints `OTA-RESULT <json>` (the OTA state, the
security events, the files of slot b)."""
import json
import sys

import stage0
import simboard
from firmware import ota, otatrial, seclog, storage, version
from firmware.httpget import HttpSource
from firmware.otamanifest import OtaError, version_code


def main():
    with open(sys.argv[2]) as f:
        n = int(f.read().strip(), 16)
    url, now = sys.argv[1], int(sys.argv[3])
    b = simboard.new_board()
    storage.use(b.fs)
    stage0.commit({"act": 0, "pend": -1, "ver": version_code(version.VERSION), "ctr": 0})
    out = {"steps": []}
    m = ota.install(HttpSource(url), None, n, now_s=now)
    out["steps"].append("installed " + m.version)
    b.reset(simboard.SOFT_RESET)
    out["steps"].append("boot slot %d trial %s" % stage0.choose())
    out["steps"].append("confirmed %s" % otatrial.confirm())
    if len(sys.argv) > 4:
        try:
            ota.install(HttpSource(sys.argv[4]), None, n, now_s=now)
            out["steps"].append("second installed")
        except OtaError as e:
            out["steps"].append("second refused: " + e.reason)
    out["state"] = stage0.state()
    out["events"] = [e["ev"] + ":" + str(e.get("reason")) for e in seclog.events()]
    out["slot_b"] = sorted(b.fs.listdir("/b/firmware"))
    print("OTA-RESULT " + json.dumps(out))


main()
