"""`python -m tools.wardapp <command>`: the ward app's users.

    user add --name N --role clinician|technician|admin|auditor [--ward W ...] [--db D]
             prints the new user's one-time password (to be changed at first login)
    user reset --name N      a new one-time password; their sessions end
    user list

`make ward-user NAME=… ROLE=… [WARDS=W3,W5]` runs `user add`. The store is
--db, else $DATABASE_URL, else build/ward/gateway.sqlite (the one
`make ward` uses). Actions are audited with --by (default: the login
name). Mistakes: one line on stderr, exit status 2.
"""
import argparse
import getpass
import os
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(2, "ward app: error: %s (see --help)\n" % message)


def _parser():
    ap = _Parser(prog="python -m tools.wardapp", description="ward app users")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    u = sub.add_parser("user", help="add, reset or list users")
    u.add_argument("action", choices=["add", "reset", "list"])
    u.add_argument("--name")
    u.add_argument("--role")
    u.add_argument("--ward", action="append", default=[],
                   help="a clinician's ward (repeat, or W3,W5)")
    u.add_argument("--db")
    u.add_argument("--by")
    return ap


def main(argv=None):
    ap = _parser()
    a = ap.parse_args(argv)
    from tools.gateway.crypto import KeyProblem
    from tools.gateway.db import DatabaseError
    from tools.gateway.store import Store, StoreError
    from tools.paths import BUILD
    from tools.wardapp.auth import AuthError, Users
    by = a.by or os.environ.get("VITALNODE_USER") or getpass.getuser()
    try:
        if a.action in ("add", "reset") and not a.name:
            raise AuthError("user %s needs NAME (--name)" % a.action)
        where = str(a.db or os.environ.get("DATABASE_URL") or BUILD / "ward" / "gateway.sqlite")
        if a.action != "add" and "://" not in where and not os.path.exists(where):
            raise AuthError("no store at %s (check --db)" % where)
        st = Store(where)
        users = Users(st)
        if a.action == "add":
            wards = [w for x in a.ward for w in x.split(",") if w.strip()]
            pw = users.create(a.name, a.role, wards, actor=by)
            import time
            with st.db.tx() as c:  # the wards a clinician is put on exist from now
                for w in wards:
                    c.execute("INSERT INTO ward_wards VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                              (w.strip(), time.time()))
            print("ward app: user %s (%s%s) created; one-time password: %s" % (
                a.name, a.role, " on " + ",".join(wards) if wards else "", pw))
            print("ward app: it is shown once; %s chooses their own at the first login" % a.name)
        elif a.action == "reset":
            print("ward app: new one-time password for %s: %s" % (a.name, users.reset(a.name, by)))
        else:
            for u in users.all():
                print("%-20s %-11s %-12s %s" % (u["name"], u["role"], ",".join(u["wards"]) or "-",
                                                "disabled" if u["disabled_at"] else
                                                "one-time password" if u["must_change"]
                                                else "active"))
        return 0
    except (AuthError, StoreError, KeyProblem, DatabaseError, OSError) as e:
        print("ward app: error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
