"""`make ota-push PORT=... URL=...`: tell a node on USB to update itself
from an update server, then reset it into the trial.

    python -m tools.ota push --port /dev/ttyUSB0 --url http://10.0.0.2:8070/

The node does the whole job itself (firmware/ota.update: fetch, verify
with the OTA key from its config, stage into the inactive slot); this tool
only starts it and reports the outcome. After the reset, boot.py runs the
new slot on trial and the app confirms it once healthy, or it reverts.
The node reaches the server over its own network: the URL must be one the
node can reach, not only this computer.
"""
from tools.provision.board import Board, BoardError

# runs on the node; prints one result line
_UPDATE = """
try:
    from firmware.otapush import run  # sampling and detection go on meanwhile
except ImportError:  # a node from before otapush
    from firmware.ota import update as run
from firmware.otamanifest import OtaError
try:
    m = run(%r, deadline_ms=%d)
    print("OTA-OK", m.version, m.counter)
except OtaError as e:
    print("OTA-REFUSED", e.reason, e.detail)
"""


class Refused(Exception):
    """The node refused the bundle; .reason is its OtaError reason."""

    def __init__(self, reason, detail):
        super().__init__("the node refused the update: %s (%s)" % (reason, detail))
        self.reason = reason


def push(port, url, reset=True, timeout=10, log=print, deadline_s=300):
    """Install from `url` on the node at `port`; the node gives the whole
    download deadline_s seconds (firmware/httpget). Returns the version
    installed. Raises Refused, or BoardError when the node cannot be used."""
    with Board(port, timeout=timeout) as b:
        b.enter()
        b.probe_esp32()
        log("ota: %s fetches %s ..." % (port, url))
        # a real node may be quiet for a while: RSA verify and flash writes
        out = b.run(_UPDATE % (url, int(deadline_s * 1000)),
                    timeout=max(300, deadline_s + 60)).strip().splitlines()
        for line in out[:-1]:  # what the node said meanwhile (sampling during the download)
            log("node: " + line)
        last = out[-1].split(" ", 2) if out else [""]
        if last[0] == "OTA-REFUSED":
            raise Refused(last[1], last[2] if len(last) > 2 else "")
        if last[0] != "OTA-OK":
            raise BoardError("unexpected answer from the node: %r" % out)
        log("ota: installed %s (security counter %s) into the inactive slot" % (last[1], last[2]))
        if reset:
            b.reset()
            log("ota: node reset: it runs %s on trial and confirms it once healthy" % last[1])
        return last[1]
