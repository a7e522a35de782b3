"""`python -m tools.gateway <command>`: the gateway, its patients, FHIR and
the data-protection jobs. The store is --db, else $DATABASE_URL, else
build/gateway.sqlite (docs/patient-data.md).

    run        --port 8883 --ca ca.pem --password-file gw.pw [--host H] [--registry R]
               [--share GROUP --client-id ID]          one of several workers
    admit      --mrn M --family F [--given G ...] --birth-date YYYY-MM-DD --ward W --bed B
    assign     --patient MRN|id --device ID [--from ISO] [--to ISO]
    unassign   --device ID [--at ISO]
    discharge  --patient MRN|id [--at ISO]
    patients   [--all]
    export     (--out FILE | --fhir-url URL [--token T]) [--patient P] [--device ID]
    access     --patient P --out FILE                 right of access: everything, as FHIR
    erase      --patient P --yes                      right to erasure
    purge      [--days N]                             retention ($VITALNODE_RETENTION_DAYS)
    rotate-key [--registry R]                         new data key, everything re-sealed
    token      issue --user U --role R [--ward W ...] [--patient P] [--scope S ...] [--ttl s]
    token      revoke --user U
    serve      [--host 127.0.0.1] [--port 8080] [--tls-cert C --tls-key K]   the FHIR API
    audit      [--patient P]                          print the trail
    audit      verify [--anchor ID:HASH]              the hash chain: first broken link, exit 1
    audit      export --out FILE                      every entry with its hash, and the head
    migrate                                           apply schema migrations, print the version

Every command that changes or reads a patient's record is audited with
--by (default: the login name). Mistakes get one line on stderr and exit
status 2; nothing is half-done. Only run, migrate, admit and token make a
store that is not there yet (and say so); every other command refuses a
--db path with no store (a typo must not read as an empty ward). A file
that --out names is replaced only with --force.
"""
import argparse
import getpass
import json
import os
import sqlite3
import sys


def _add_common(p, registry=False):
    p.add_argument("--db", help="SQLite path or DATABASE_URL (default $DATABASE_URL, else "
                                "build/gateway.sqlite)")
    p.add_argument("--by", default=None, help="who does this, for the audit trail")
    if registry:
        p.add_argument("--registry")


def _parser():
    ap = argparse.ArgumentParser(prog="python -m tools.gateway",
                                 description="VitalNode gateway: telemetry, patients, FHIR.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="subscribe, verify, store, acknowledge")
    _add_common(r, registry=True)
    r.add_argument("--host", default="localhost")
    r.add_argument("--port", type=int, default=8883)
    r.add_argument("--ca", required=True, help="CA of the broker's certificate (PEM)")
    r.add_argument("--password-file", required=True, help="the gateway's broker password")
    r.add_argument("--share", help="MQTT shared-subscription group (several workers)")
    r.add_argument("--client-id", default="vitalnode-gateway")
    r.add_argument("--quiet", action="store_true", help="print refusals, not every frame")
    a = sub.add_parser("admit", help="admit a patient")
    _add_common(a)
    a.add_argument("--mrn", required=True)
    a.add_argument("--family", required=True)
    a.add_argument("--given", action="append", default=[])
    a.add_argument("--birth-date", required=True)
    a.add_argument("--gender", choices=["male", "female", "other", "unknown"])
    a.add_argument("--ward", required=True)
    a.add_argument("--bed", required=True)
    s = sub.add_parser("assign", help="put a device on a patient for a period")
    _add_common(s, registry=True)
    s.add_argument("--patient", required=True, help="MRN or patient id")
    s.add_argument("--device", required=True)
    s.add_argument("--from", dest="start", help="ISO date-time (default now)")
    s.add_argument("--to", dest="end", help="ISO date-time (default open)")
    u = sub.add_parser("unassign", help="end a device's open assignment")
    _add_common(u)
    u.add_argument("--device", required=True)
    u.add_argument("--at")
    d = sub.add_parser("discharge", help="discharge a patient (ends their assignments)")
    _add_common(d)
    d.add_argument("--patient", required=True)
    d.add_argument("--at")
    ls = sub.add_parser("patients", help="list admitted patients")
    _add_common(ls)
    ls.add_argument("--all", action="store_true", help="discharged ones too")
    e = sub.add_parser("export", help="FHIR R4 transaction Bundle to a file or a FHIR server")
    _add_common(e, registry=True)
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="the JSON file to write (an existing one only with --force)")
    g.add_argument("--fhir-url", help="FHIR server base URL: the bundle is POSTed there (fhirpy)")
    e.add_argument("--token", help="bearer token for --fhir-url (or $VITALNODE_FHIR_TOKEN)")
    e.add_argument("--patient")
    e.add_argument("--device")
    e.add_argument("--patients-only", action="store_true",
                   help="leave out device-only Observations")
    e.add_argument("--force", action="store_true", help="replace the --out file")
    x = sub.add_parser("access", help="right of access: one patient's data as FHIR")
    _add_common(x)
    x.add_argument("--patient", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--force", action="store_true", help="replace the --out file")
    er = sub.add_parser("erase", help="right to erasure: delete a discharged patient's data")
    _add_common(er)
    er.add_argument("--patient", required=True)
    er.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    pu = sub.add_parser("purge", help="delete what is older than the retention period")
    _add_common(pu)
    pu.add_argument("--days", type=float,
                    default=float(os.environ["VITALNODE_RETENTION_DAYS"])
                    if os.environ.get("VITALNODE_RETENTION_DAYS") else None)
    rk = sub.add_parser("rotate-key", help="new data key; re-seal the store (and the registry)")
    _add_common(rk, registry=True)
    t = sub.add_parser("token", help="API tokens")
    _add_common(t)
    t.add_argument("action", choices=["issue", "revoke"])
    t.add_argument("--user", required=True)
    t.add_argument("--role")
    t.add_argument("--ward", action="append")
    t.add_argument("--patient")
    t.add_argument("--scope", action="append")
    t.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    sv = sub.add_parser("serve", help="the FHIR REST API (uvicorn)")
    _add_common(sv)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8080)
    sv.add_argument("--tls-cert")
    sv.add_argument("--tls-key")
    au = sub.add_parser("audit", help="print, verify or export the audit trail")
    _add_common(au)
    au.add_argument("action", nargs="?", choices=["show", "verify", "export"], default="show",
                    help="show (default), verify the hash chain, export for an auditor")
    au.add_argument("--patient")
    au.add_argument("--out", help="export: the JSON file to write")
    au.add_argument("--anchor", help="verify: ID:HASH of a head kept from an earlier export")
    au.add_argument("--force", action="store_true", help="export: replace the --out file")
    m = sub.add_parser("migrate", help="apply schema migrations")
    _add_common(m)
    return ap


def _store(a):
    from tools.gateway.core import default_db
    from tools.gateway.store import Store
    return Store(a.db or default_db())


def _patient(st, ref):
    from tools.gateway.store import StoreError
    p = st.find_patient(ref)
    if p is None:
        raise StoreError("no patient with id or MRN %r" % ref)
    return p


def _registry_path(a):
    from tools.provision.registry import default_path
    return getattr(a, "registry", None) or default_path()


def _show(p):
    return "%s  %-12s %s, %s  born %s  ward %s bed %s%s" % (
        p["id"], p["mrn"], p["family"], " ".join(p["given"]), p["birth_date"], p["ward"], p["bed"],
        "" if p["discharged_at"] is None else "  (discharged)")


def _run(a):
    import time
    from tools.gateway.core import Gateway
    from tools.gateway.mqtt import Subscriber
    with open(a.password_file) as f:
        pw = f.read().strip()
    gw = Gateway(_registry_path(a), a.db, log=print)
    try:
        s = Subscriber(gw, a.host, a.port, a.ca, pw, live=print, share=a.share,
                       client_id=a.client_id, show=not a.quiet).start()
    except OSError as err:
        print(err, file=sys.stderr)
        return 1
    print("gateway: listening on %s:%d%s, storing in %s (Ctrl-C stops)"
          % (a.host, a.port, " as part of group %s" % a.share if a.share else "", gw.store.url),
          flush=True)
    import signal

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        s.stop()
        print("gateway: %s" % gw.counts, flush=True)
    return 0


def _export(a, st, by):
    from tools.gateway import fhir
    pid = _patient(st, a.patient)["id"] if a.patient else None
    b = fhir.export_bundle(st, patient_id=pid, device=a.device,
                           include_unassigned=False if (a.patients_only or pid) else True)
    s = fhir.summary(b)
    if pid:
        st.audit(by, "export", pid, "FHIR transaction to %s" % ("file" if a.out else a.fhir_url))
    what = "%d Observations (%d vital-signs, %d device-only, %d without a trusted time, %d " \
           "unreliable), %d Patients, %d Devices" % (
               s["resources"].get("Observation", 0), s["vital_signs"], s["device_only"],
               s["untimed"], s["unreliable"], s["resources"].get("Patient", 0),
               s["resources"].get("Device", 0))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(b, f, indent=1)
        print("gateway: wrote %s to %s (FHIR R4 transaction Bundle, checked)" % (what, a.out))
        return 0
    from tools.gateway.fhirpost import post_bundle
    res = post_bundle(a.fhir_url, b, a.token or os.environ.get("VITALNODE_FHIR_TOKEN"))
    print("gateway: posted %s to %s: %s" % (what, a.fhir_url, res))
    return 0


def _token(a, st, by):
    from tools.gateway.store import StoreError
    from tools.gateway.tokens import Tokens
    tok = Tokens(st)
    if a.action == "revoke":
        print("gateway: revoked %d token(s) of %s" % (tok.revoke_user(a.user, by), a.user))
        return 0
    if not a.role:
        raise StoreError("token issue needs --role")
    pid = _patient(st, a.patient)["id"] if a.patient else None
    t = tok.issue(a.user, a.role, scopes=a.scope, wards=a.ward, patient_id=pid, ttl_s=a.ttl,
                  actor=by)
    print(t)
    return 0


def _serve(a, st):
    import uvicorn
    from tools.gateway.api import create_app
    loopback = a.host in ("127.0.0.1", "::1", "localhost")
    if not loopback and not (a.tls_cert and a.tls_key):
        from tools.gateway.store import StoreError
        raise StoreError("serving on %s without TLS would send bearer tokens in clear: give "
                         "--tls-cert and --tls-key, or keep --host 127.0.0.1" % a.host)
    print("gateway: FHIR API on %s://%s:%d/fhir (Ctrl-C stops)"
          % ("https" if a.tls_cert else "http", a.host, a.port), flush=True)
    uvicorn.run(create_app(st), host=a.host, port=a.port, log_level="warning",
                ssl_certfile=a.tls_cert, ssl_keyfile=a.tls_key)
    return 0


def _rotate(a, st):
    from tools.gateway.crypto import KeyProblem
    from tools.provision.registry import Registry
    reg = Registry(_registry_path(a)) if a.registry or os.path.exists(_registry_path(a)) else None
    rings = [st.ring] + ([reg.ring] if reg else [])
    for r in rings:
        if r.path is None:
            raise KeyProblem("the key comes from %s: rotate it where it is kept (a key file "
                             "can be rotated here)" % r.source)
    # one new ring per key file (the store and the registry may share one)
    new = {}
    for r in rings:
        new.setdefault(str(r.path), r.with_new_key())
    for n in new.values():
        n.save()  # old + new key: a crash from here on leaves everything readable
    n_frames = st.rotate_key(new[str(st.ring.path)])
    n_keys = reg.rotate_data_key(new[str(reg.ring.path)]) if reg else 0
    for n in new.values():
        n.only_current().save()  # the old key is gone
    print("gateway: data key rotated to %s: %d frames and every patient re-sealed%s"
          % (st.ring.current, n_frames, "; %d registry sub-keys re-sealed" % n_keys if reg else ""))
    return 0


def _audit(a, st, by):
    """audit verify / audit export."""
    from tools.gateway.store import StoreError
    if a.action == "verify":
        anchor = None
        if a.anchor:
            i, _, h = a.anchor.partition(":")
            if not (i.isdigit() and len(h) == 64):
                raise StoreError("--anchor %r: ID:HASH as `audit export` printed it" % a.anchor)
            anchor = (int(i), h)
        problem = st.audit_verify(anchor)
        n = len(st.audit_log())
        if problem:
            print("gateway: audit chain BROKEN: %s" % problem)
            return 1
        head = st.audit_head()
        print("gateway: audit chain intact: %d entries, head %s" % (
            n, "%d:%s" % head if head else "(empty)"))
        return 0
    if not a.out:
        raise StoreError("audit export needs --out FILE")
    from tools.gateway.auditlog import export
    doc = export(st)
    st.audit(by, "audit-export", None, "%d entries to a file" % len(doc["entries"]))
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    os.chmod(a.out, 0o600)
    print("gateway: wrote %d audit entries to %s; chain %s; keep the head %s" % (
        len(doc["entries"]), a.out, "intact" if doc["chain_ok"] else "BROKEN: " + doc["problem"],
        doc["head"]))
    return 0


# commands that may start a store where there is none (the first admission, a
# first API token, the schema); the others read or change one that must exist
_MAKES_STORE = ("migrate", "admit", "token")


def _sqlite_file(where):
    """The SQLite file a --db / DATABASE_URL names, or None (PostgreSQL, memory)."""
    if where.startswith("sqlite://"):
        where = where[len("sqlite:///"):] if where.startswith("sqlite:///") else \
            where[len("sqlite://"):]
    elif "://" in where:
        return None
    return None if where in ("", ":memory:") else where


def _check_paths(a, StoreError):
    """Refuse, before anything is opened or written: a store that is not
    there (unless the command makes one), an --out file that is (unless
    --force)."""
    from tools.gateway.core import default_db
    where = str(a.db or default_db())
    f = _sqlite_file(where)
    if f is not None and not os.path.exists(f):
        if a.cmd not in _MAKES_STORE:
            raise StoreError("no store at %s (check --db; `python -m tools.gateway migrate --db "
                             "%s` makes a new one)" % (where, where))
        print("gateway: no store at %s: making a new one" % where, file=sys.stderr)
    out = getattr(a, "out", None)
    if out and os.path.exists(out) and not getattr(a, "force", False):
        raise StoreError("%s exists: refusing to overwrite it (--force; make export FORCE=1)"
                         % out)


def main(argv=None):
    a = _parser().parse_args(argv)
    from tools.gateway.crypto import KeyProblem
    from tools.gateway.db import DatabaseError
    from tools.gateway.fhircheck import FhirInvalid
    from tools.gateway.store import StoreError, iso, parse_time
    from tools.gateway.tokens import TokenError
    from tools.provision.registry import RegistryError
    by = a.by or os.environ.get("VITALNODE_USER") or getpass.getuser()
    try:
        if a.cmd == "run":
            return _run(a)
        _check_paths(a, StoreError)
        try:
            st = _store(a)
        except sqlite3.DatabaseError as e:  # a file that is not SQLite: one line, not a traceback
            from tools.gateway.core import default_db
            raise StoreError("%s is not a gateway store (%s)" % (a.db or default_db(), e))
        if a.cmd == "migrate":
            print("gateway: %s at schema version %s" % (st.url, st.db.schema_version()))
        elif a.cmd == "admit":
            p = st.admit(a.mrn, a.family, a.given, a.birth_date, a.ward, a.bed, by, a.gender)
            print("gateway: admitted %s" % _show(p))
        elif a.cmd == "assign":
            from tools.provision.registry import Registry
            dev = a.device.lower()
            with Registry(_registry_path(a)) as reg:
                info = reg.device(dev)
            if info is None or info["status"] != "active":
                raise StoreError("device %s is %s in the registry %s" % (
                    dev, "not" if info is None else info["status"], _registry_path(a)))
            p = _patient(st, a.patient)
            x = st.assign(p["id"], dev, by, parse_time(a.start, "--from") if a.start else None,
                          parse_time(a.end, "--to") if a.end else None)
            print("gateway: device %s on patient %s from %s%s" % (
                dev, p["id"], iso(x["start_time"]), " to %s" % iso(x["end_time"]) if x["end_time"]
                else ""))
        elif a.cmd == "unassign":
            pid = st.unassign(a.device.lower(), by, parse_time(a.at, "--at") if a.at else None)
            print("gateway: device %s taken off patient %s" % (a.device.lower(), pid))
        elif a.cmd == "discharge":
            p = _patient(st, a.patient)
            st.discharge(p["id"], by, parse_time(a.at, "--at") if a.at else None)
            print("gateway: discharged patient %s" % p["id"])
        elif a.cmd == "patients":
            for p in st.patients(include_discharged=a.all):
                print(_show(p))
                for x in st.assignments(pid=p["id"]):
                    print("    device %s from %s%s" % (x["device"], iso(x["start_time"]),
                                                        " to %s" % iso(x["end_time"])
                                                        if x["end_time"] else " (open)"))
            st.audit(by, "list-patients", None, "%s" % ("all" if a.all else "admitted"))
        elif a.cmd == "export":
            return _export(a, st, by)
        elif a.cmd == "access":
            from tools.gateway.fhir import access_bundle
            p = _patient(st, a.patient)
            st.audit(by, "access-export", p["id"], "right of access: FHIR collection Bundle")
            b = access_bundle(st, p["id"])
            with open(a.out, "w") as f:
                json.dump(b, f, indent=1)
            os.chmod(a.out, 0o600)
            print("gateway: wrote %d resources about patient %s to %s (owner-only)"
                  % (len(b["entry"]), p["id"], a.out))
        elif a.cmd == "erase":
            p = _patient(st, a.patient)
            if not a.yes:
                raise StoreError("erasing patient %s deletes their record for good: add --yes"
                                 % p["id"])
            n = st.erase(p["id"], by)
            print("gateway: erased patient %s: %d frames, %d assignments, demographics; the audit "
                  "keeps the fact" % (p["id"], n["frames"], n["assignments"]))
        elif a.cmd == "purge":
            if a.days is None:
                raise StoreError("give --days or set VITALNODE_RETENTION_DAYS")
            n = st.purge(a.days, by)
            print("gateway: purged (retention %g days): %s" % (a.days, n))
        elif a.cmd == "rotate-key":
            return _rotate(a, st)
        elif a.cmd == "token":
            return _token(a, st, by)
        elif a.cmd == "serve":
            return _serve(a, st)
        elif a.cmd == "audit" and a.action != "show":
            return _audit(a, st, by)
        elif a.cmd == "audit":
            subject = _patient(st, a.patient)["id"] if a.patient else None
            for e in st.audit_log(subject):
                print("%s  %-14s %-16s %s %s" % (iso(e["at"]), e["actor"], e["action"],
                                                  e["subject"] or "-", e["detail"] or ""))
        return 0
    except (StoreError, KeyProblem, DatabaseError, TokenError, RegistryError, FhirInvalid,
            OSError) as e:
        print("gateway: error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
