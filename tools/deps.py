"""Device-side dependencies fetched from PyPI by the build, pinned by
sha256, never committed: `python -m tools.deps` (run by `make deps`).

umqtt.simple 1.3.4 is published on PyPI as an sdist that pip cannot
install for a MicroPython target (no setup.py); PyPI's file for it is
fetched and checked against the pinned sha256, and only umqtt/simple.py
is taken out, into lib/umqtt/simple.py (git-ignored). From there it is
a device module like any other: compiled, tested on both VMs, deployed
and shipped in OTA bundles. A download that does not match the pin is
refused and nothing is written.
"""
import hashlib
import io
import sys
import tarfile
import urllib.request

from tools.paths import LIB

UMQTT = {
    "name": "micropython-umqtt.simple",
    "version": "1.3.4",
    "url": "https://files.pythonhosted.org/packages/bd/cf/"
           "697e3418b2f44222b3e848078b1e33ee76aedca9b6c2430ca1b1aec1ce1d/"
           "micropython-umqtt.simple-1.3.4.tar.gz",
    "sha256": "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f",
    "member": "micropython-umqtt.simple-1.3.4/umqtt/simple.py",
    "dest": LIB / "umqtt" / "simple.py",
}
_STAMP = LIB / "umqtt" / ".pinned"


class DepError(Exception):
    pass


def extract(blob, dep=UMQTT):
    """The module's source from the sdist bytes, if they match the pin."""
    got = hashlib.sha256(blob).hexdigest()
    if got != dep["sha256"]:
        raise DepError("%s %s: sha256 %s does not match the pinned %s; refusing it"
                       % (dep["name"], dep["version"], got, dep["sha256"]))
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        return tf.extractfile(tf.getmember(dep["member"])).read()


def ensure(dep=UMQTT, log=print):
    dest = dep["dest"]
    if dest.exists() and _STAMP.exists() and _STAMP.read_text().strip() == dep["sha256"]:
        return dest
    log("fetching %s %s (pinned by sha256)" % (dep["name"], dep["version"]))
    try:
        with urllib.request.urlopen(dep["url"], timeout=60) as r:
            blob = r.read()
    except OSError as e:
        raise DepError("cannot download %s: %s" % (dep["name"], e))
    src = extract(blob, dep)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src)
    _STAMP.write_text(dep["sha256"] + "\n")
    return dest


if __name__ == "__main__":
    try:
        ensure()
    except DepError as e:
        print("deps: error: %s" % e, file=sys.stderr)
        sys.exit(1)
