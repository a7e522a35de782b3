"""`python -m tools.gateway run|export`.

    python -m tools.gateway run --port 8883 --ca ca.pem --password-file gw.pw
                               [--host localhost] [--registry R] [--db build/gateway.sqlite]
    python -m tools.gateway export --out bundle.json [--db ...] [--device ID]

run: subscribe, verify, store, print live vitals and refusals until Ctrl-C.
export: the stored vitals as a FHIR R4 transaction Bundle (validated).
"""
import argparse
import json
import sys

from tools.paths import BUILD


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.gateway")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--host", default="localhost")
    r.add_argument("--port", type=int, default=8883)
    r.add_argument("--ca", required=True, help="CA of the broker's certificate (PEM)")
    r.add_argument("--password-file", required=True, help="the gateway's broker password")
    r.add_argument("--registry")
    r.add_argument("--db", default=str(BUILD / "gateway.sqlite"))
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    e.add_argument("--db", default=str(BUILD / "gateway.sqlite"))
    e.add_argument("--registry")
    e.add_argument("--device")
    a = ap.parse_args(argv)
    from tools.gateway.core import Gateway
    from tools.provision.registry import default_path
    gw = Gateway(a.registry or default_path(), a.db, log=print)
    if a.cmd == "export":
        from tools.gateway.fhir import to_bundle
        b = to_bundle(gw.rows(device=a.device, kind="vitals"))
        with open(a.out, "w") as f:
            json.dump(b, f, indent=1)
        print("gateway: wrote %d Observations to %s (FHIR R4 transaction Bundle, validated)"
              % (len(b["entry"]), a.out))
        return 0
    from tools.gateway.mqtt import Subscriber
    import time
    with open(a.password_file) as f:
        pw = f.read().strip()
    try:
        s = Subscriber(gw, a.host, a.port, a.ca, pw, live=print).start()
    except OSError as err:
        print(err, file=sys.stderr)
        return 1
    print("gateway: listening on %s:%d (Ctrl-C stops)" % (a.host, a.port))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        s.stop()
        print("gateway: %s" % gw.counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
