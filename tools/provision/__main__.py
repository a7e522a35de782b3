"""Provision VitalNode nodes over USB and keep the device registry.

    python -m tools.provision provision --port PORT [--config SITE.json] [--rotate]
                                        [--reinstate] [--lockdown] [--no-reset]
    python -m tools.provision verify --port PORT
    python -m tools.provision revoke DEVICE_ID [--reason TEXT]
    python -m tools.provision list
All take --registry PATH (default: $VITALNODE_REGISTRY, else
~/.local/share/vitalnode/registry.sqlite) and --timeout S (REPL wait). Exit status: 0 done, 1 refused
or failed (the message says why and what to do), 2 bad arguments.
"""
import argparse
import hmac
import json
import secrets
import sys

from tools.provision import keys, site
from tools.provision.board import Board, BoardError
from tools.provision.registry import Registry, RegistryError


class Refused(Exception):
    pass


def _step(n, total, text):
    print("[%d/%d] %s" % (n, total, text), flush=True)


def _connect(port, timeout):
    b = Board(port, timeout)
    try:
        b.enter()
        info = b.probe_esp32()
    except BaseException:
        b.close()
        raise
    if not info["firmware"]:
        b.close()
        raise Refused("the VitalNode firmware is not on the board at %s: run "
                      "`make deploy PORT=%s` first" % (port, port))
    return b, info


def _checked_id(dev):
    """The board's reported device id if it has the one form (the chip's
    MAC, 12 lower-case hex digits: firmware/config.check_device_id), else
    Refused - before anything is written to the board or the registry."""
    try:
        return keys.check_device_id(dev)
    except ValueError as e:
        raise Refused("the board reports the device id %r, which is not a device id (%s); "
                      "refusing it: nothing was written to the board or the registry"
                      % (dev, e))


def _attest(b, reg, device_id):
    """Challenge-response: the node proves it holds the registry's key for
    `device_id`: it answers with the id it signed for and the tag, and both
    must match (the id is inside the HMAC and the sub-key's derivation)."""
    nonce = secrets.token_bytes(32)
    out = b.run("import binascii\nfrom firmware import keystore\nks = keystore.load()\n"
                "print(ks.device_id + ' ' + binascii.hexlify(ks.attest(binascii.unhexlify(%r)))"
                ".decode() if ks else 'NOKEY')" % nonce.hex())
    got = out.strip()
    if got == "NOKEY":
        return False, "the node has no key"
    who, _, tag = got.partition(" ")
    if who != device_id:
        return False, "the node answers for the device id %r, not %s" % (who, device_id)
    want = keys.attest_response(reg.key(device_id, "attest"), device_id, nonce)
    try:
        ok = hmac.compare_digest(bytes.fromhex(tag), want)
    except ValueError:
        ok = False
    return ok, "answer matches" if ok else "answer does not match the registry's key"


def cmd_provision(a, reg):
    total = 6
    if a.config:
        site_path = a.config
    else:
        site_path = site.dev_site(reg.path.parent / "dev-site")
        print("note: no --config given: using the development site %s (a development CA and "
              "OTA key; pass CONFIG=site.json for a deployment)" % site_path)
    s = site.load_site(site_path)
    lockdown = a.lockdown or s.get("lockdown", False)
    _step(1, total, "connecting to %s" % a.port)
    b, info = a.connect(a.port, a.timeout)
    with b:
        st = info["status"]
        dev = _checked_id(st.get("device_id"))
        print("      board: %s; device %s; %s" % (
            info["machine"], dev, "has a key (generation %d)" % st["gen"] if st["provisioned"]
            else "no key yet"))
        _step(2, total, "checking the registry %s" % reg.path)
        known = reg.device(dev)
        if known and known["status"] == "revoked" and not a.reinstate:
            raise Refused("device %s was revoked on %s (%s); re-provisioning it needs --reinstate "
                          "(make provision REINSTATE=1)"
                          % (dev, known["revoked_at"], known["revoke_reason"] or "no reason"))
        if (st["provisioned"] or known) and not (a.rotate or a.reinstate):
            where = []
            if st["provisioned"]:
                where.append("the node holds a key (generation %d)" % st["gen"])
            if known:
                where.append("the registry lists it (%s, generation %d)"
                             % (known["status"], known["key_gen"]))
            raise Refused("device %s is already provisioned: %s. Refusing to overwrite; "
                          "use --rotate (make provision ROTATE=1) to issue a new key" % (dev, " and ".join(where)))
        gen = max(st["gen"], known["key_gen"] if known else 0) + 1
        _step(3, total, "building and validating the configuration")
        cfg = site.device_config(s, dev)
        root = keys.new_root()
        reg.begin(dev, gen, keys.subkeys(root, dev), info["machine"], lockdown)
        _step(4, total, "writing config.json and the key (generation %d%s)"
              % (gen, ", lock-down on" if lockdown else ""))
        b.write_file("config.json", json.dumps(cfg))
        b.run("from firmware import config\nconfig.load(%r)" % dev)
        b.run("from firmware import keystore\nkeystore.install(%r, %d, %r, %r)"
              % (root.hex(), gen, lockdown, bool(st["provisioned"])))
        del root
        _step(5, total, "challenge-response after a soft reset")
        b.enter()
        ok, why = _attest(b, reg, dev)
        if not ok:
            reg.note(dev, "verify-failed", why)
            raise Refused("challenge-response failed for %s: %s; the registry keeps it 'pending'"
                          % (dev, why))
        reg.activate(dev)
        _step(6, total, "registered %s as active (generation %d)%s"
              % (dev, gen, "" if a.no_reset else "; resetting the node"))
        if not a.no_reset:
            b.reset()
    print("provisioned %s" % dev)
    if lockdown:
        print("lock-down: after this reset the REPL is closed; recovery erases the key "
              "(hold BOOT for 2 s right after reset), then provision with --rotate (make provision "
              "ROTATE=1)")
    return 0


def cmd_verify(a, reg):
    b, info = a.connect(a.port, a.timeout)
    with b:
        dev = _checked_id(info["status"].get("device_id"))
        d = reg.device(dev)
        if d is None:
            raise Refused("device %s is not in the registry %s" % (dev, reg.path))
        ok, why = _attest(b, reg, dev)
        reg.note(dev, "verified" if ok else "verify-failed", why)
    print("%s: %s, %s (generation %d): %s" % (dev, "OK" if ok else "FAILED", d["status"],
                                               d["key_gen"], why))
    return 0 if ok else 1


def cmd_revoke(a, reg):
    reg.revoke(a.device_id, a.reason)
    print("revoked %s: the gateway rejects its frames from now on; a running `make ward` "
          "removes its login and ends its session within a second" % a.device_id)
    return 0


def cmd_list(a, reg):
    rows = reg.devices()
    print("%-14s %-8s %3s %-5s %-26s %s" % ("device", "status", "gen", "lock", "provisioned",
                                            "board"))
    for d in rows:
        print("%-14s %-8s %3d %-5s %-26s %s" % (d["device_id"], d["status"], d["key_gen"],
                                                "yes" if d["lockdown"] else "no",
                                                d["provisioned_at"] or "-", d["board"] or "-"))
    print("%d device(s) in %s" % (len(rows), reg.path))
    return 0


def cmd_site(a, reg):
    path = site.make_site(a.out, a.ssid, a.wifi_password, a.broker, replace=a.force)
    s = site.load_site(path)
    print("site: %s (WiFi %r, broker %s:%d, CA %s, OTA key %s)"
          % (path, s["wifi"]["ssid"], s["broker"]["host"], s["broker"]["port"],
             s["ca_cert_file"], s["ota_pubkey_file"]))
    print("note: a development CA and OTA key made on this machine; keep the folder private")
    return 0


def main(argv=None, connect=None):
    """connect(port, timeout) -> (board, info): the board session (default:
    mpremote over the serial port; the security campaign passes boards
    that lie)."""
    ap = argparse.ArgumentParser(prog="python -m tools.provision",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--registry", help="registry file (SQLite)")
    ap.add_argument("--timeout", type=float, default=10,
                    help="seconds to wait for the node's REPL (default 10)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("provision", help="give a node its key and configuration")
    p.add_argument("--port", required=True)
    p.add_argument("--config", help="site configuration (JSON); default: the development site")
    p.add_argument("--rotate", action="store_true", help="replace the key of a provisioned node")
    p.add_argument("--reinstate", action="store_true", help="re-provision a revoked node")
    p.add_argument("--lockdown", action="store_true", help="close the REPL after provisioning")
    p.add_argument("--no-reset", action="store_true", help="leave the node at the REPL")
    p = sub.add_parser("verify", help="challenge-response against the registry")
    p.add_argument("--port", required=True)
    p = sub.add_parser("revoke", help="mark a device revoked (the gateway rejects it)")
    p.add_argument("device_id")
    p.add_argument("--reason", default="")
    sub.add_parser("list", help="the devices in the registry")
    p = sub.add_parser("site", help="a site for your own network: CA, OTA key, site.json")
    p.add_argument("--out", required=True, help="folder (made once; kept keys are reused)")
    p.add_argument("--ssid", required=True)
    p.add_argument("--wifi-password", default="")
    p.add_argument("--broker", required=True, help="HOST[:PORT] nodes connect to (8883)")
    p.add_argument("--force", action="store_true", help="replace the folder's site.json")
    a = ap.parse_args(argv)
    a.connect = connect or _connect
    try:
        with Registry(a.registry) as reg:
            return {"provision": cmd_provision, "verify": cmd_verify, "revoke": cmd_revoke,
                    "list": cmd_list, "site": cmd_site}[a.cmd](a, reg)
    except (Refused, BoardError, RegistryError, site.SiteError) as e:
        print("provision: error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
