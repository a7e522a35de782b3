"""`make ota-key | ota-bundle | ota-verify | ota-serve`.

    python -m tools.ota keygen --out DIR
    python -m tools.ota build --out DIR [--key PEM] [--version X.Y.Z] [--counter N]
                              [--days 90] [--image FIRMWARE.bin]
                              [--bound --device ID [--device ID ...]]
    python -m tools.ota verify BUNDLE [--pubkey PEM]
    python -m tools.ota serve BUNDLE [--host 0.0.0.0] [--port 8070] [--registry DB]
    python -m tools.ota push --port PORT --url URL [--no-reset] [--deadline 300]

Without --key/--pubkey the development site's key pair is used, and the
tool says so: the one `make provision` and `make ward` use, beside the
default registry (tools/provision/site.default_dev_site_dir).
"""
import argparse
import sys

from tools.ota.push import Refused
from tools.provision.board import BoardError


def _dev_key(name):
    from tools.provision.site import default_dev_site_dir, dev_site
    dev = default_dev_site_dir()
    if not (dev / name).exists():
        dev_site(dev)
    print("ota: using the development key %s (not for real patients)" % (dev / name))
    return dev / name


def main(argv=None):
    from tools.ota import bundle
    ap = argparse.ArgumentParser(prog="python -m tools.ota", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="new RSA-3072 signing key pair")
    k.add_argument("--out", required=True)
    b = sub.add_parser("build", help="build and sign a bundle from the current tree")
    b.add_argument("--out", required=True)
    b.add_argument("--key")
    b.add_argument("--version", help="X.Y.Z (default: firmware/version.py)")
    b.add_argument("--counter", type=int, default=0, help="security counter (anti-rollback)")
    b.add_argument("--days", type=float, default=90, help="valid for (days)")
    b.add_argument("--image", help="MicroPython firmware image for the next app partition")
    b.add_argument("--bound", action="store_true",
                   help="only the --device nodes (named in the signed manifest) may install it")
    b.add_argument("--device", action="append", default=[], metavar="ID",
                   help="a device id a bound bundle is for (repeatable)")
    v = sub.add_parser("verify", help="check a bundle as a node would")
    v.add_argument("bundle")
    v.add_argument("--pubkey")
    s = sub.add_parser("serve", help="serve a bundle over HTTP")
    s.add_argument("bundle")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=int, default=8070)
    s.add_argument("--registry", help="registry for device-bound bundles")
    p = sub.add_parser("push", help="tell a node on USB to update from a server")
    p.add_argument("--port", required=True, help="the node's serial port")
    p.add_argument("--url", required=True, help="the update server as the node reaches it")
    p.add_argument("--no-reset", action="store_true", help="stage only; the trial starts at the next reset")
    p.add_argument("--deadline", type=float, default=300,
                   help="seconds the node gives the whole download (default 300)")
    a = ap.parse_args(argv)
    if a.cmd == "push" and not 1 <= a.deadline <= 3600:
        print("ota: error: --deadline must be 1-3600 seconds", file=sys.stderr)
        return 2
    if a.cmd == "build" and bool(a.bound) != bool(a.device):
        print("ota: error: %s" % ("a bound bundle names its devices: --device ID (repeatable)"
                                  if a.bound else "--device is for a bound bundle: add --bound"),
              file=sys.stderr)
        return 2
    try:
        if a.cmd == "keygen":
            priv, pub = bundle.keygen(a.out)
            print("ota: wrote %s (keep offline) and %s (goes into site.json ota_pubkey_file)"
                  % (priv, pub))
        elif a.cmd == "build":
            bundle.build(a.out, a.key or _dev_key("ota_private.pem"), a.version, a.counter,
                         days=a.days, bound=a.bound, image=a.image, devices=a.device)
        elif a.cmd == "verify":
            bundle.verify(a.bundle, a.pubkey or _dev_key("ota_public.pem"))
        elif a.cmd == "push":
            from tools.ota.push import push
            push(a.port, a.url, reset=not a.no_reset, deadline_s=a.deadline)
        else:
            from tools.ota.server import make_server
            srv = make_server(a.bundle, a.host, a.port, a.registry)
            print("ota: serving %s on http://%s:%d/ (Ctrl-C stops)" % (a.bundle, a.host, a.port))
            srv.serve_forever()
    except (bundle.BundleError, OSError, Refused, BoardError) as e:
        print("ota: error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
