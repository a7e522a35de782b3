"""Security events, persisted on the node's flash until telemetry sends them.

    from firmware import seclog
    seclog.record("ota-reject", reason="signature", version="1.2.0")
    for event in seclog.events(): ...

One JSON object per line in `security.log`: {"ev": name, "ms": ticks_ms
of this boot, ...fields}. At
MAX_BYTES the file becomes `security.log.1` (the previous one is dropped),
so the log is bounded at twice that.
Guarantees: record() never raises - a full or failing flash is printed and
counted in `lost`, an update decision never waits on the log; an event is
durable once record() returns (the file is closed).
Non-guarantee: an event recorded while power fails may be lost.
"""
import json
import time

from firmware import storage
from micropython import const

PATH = "security.log"
MAX_BYTES = const(8192)
lost = 0
listener = None  # telemetry sets it: each event also becomes a SECURITY frame


def record(ev, **fields):
    global lost
    fields["ev"] = ev
    fields["ms"] = time.ticks_ms()
    line = json.dumps(fields) + "\n"
    print("vitalnode: security event", line.strip())
    fs = storage.fs()
    try:
        try:
            if fs.stat(PATH)[6] + len(line) > MAX_BYTES:
                fs.rename(PATH, PATH + ".1")
        except OSError:
            pass  # no log yet
        with fs.open(PATH, "a") as f:
            f.write(line)
    except OSError as e:
        lost += 1
        print("vitalnode: security log not written:", e)
    if listener is not None:
        try:
            listener(fields)
        except Exception as e:  # noqa: BLE001 - never raise (see Guarantees)
            print("vitalnode: security event not queued:", e)


def events():
    """Every event still on flash, oldest first."""
    out = []
    for path in (PATH + ".1", PATH):
        try:
            text = storage.read_text(path)
        except OSError:
            continue
        for line in text.split("\n"):
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by power loss
    return out
