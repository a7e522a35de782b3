"""The audit trail's hash chain: the one home of its format.

    h = entry_hash(prev_hash, at, actor, action, subject, detail)
    problem = verify(rows, head)    # None, or the first broken link in words

Each audit row carries `hash` = SHA-256 over the previous row's hash and
its own fields (canonical JSON: [prev, repr(at), actor, action, subject,
detail]); the first row chains to GENESIS. The store keeps the newest
(id, hash) as the chain's head in its meta table, written in the same
transaction as the row.

Guarantees (verify): an edited field, a deleted row, two rows swapped or
renumbered, a row inserted by hand, and rows cut off the end (the head no
longer matches) are each reported, naming the first entry where the chain
breaks.
Non-guarantee: someone who can write the database and recomputes every
hash and the head leaves a consistent chain. Against that, an auditor
keeps the head of each export (`audit export` prints it) and checks that a
later chain still passes through it (verify(..., anchor=(id, hash))).
"""
import hashlib
import json

GENESIS = "0" * 64
COLUMNS = ("id", "at", "actor", "action", "subject", "detail", "hash")


class ChainBroken(Exception):
    pass


def entry_hash(prev, at, actor, action, subject, detail):
    body = json.dumps([prev, repr(float(at)), actor, action, subject, detail],
                      separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode()).hexdigest()


def verify(rows, head=None, anchor=None):
    """rows: dicts with COLUMNS, in id order. head: the stored (id, hash)
    of the newest row, or None when the store has none. anchor: an (id,
    hash) an auditor kept from an earlier export. Returns None when the
    chain holds, else the first broken link in words."""
    prev, last_id = GENESIS, None
    seen_anchor = anchor is None
    for r in rows:
        if last_id is not None and r["id"] <= last_id:
            return "audit entry %s: out of order after entry %s" % (r["id"], last_id)
        want = entry_hash(prev, r["at"], r["actor"], r["action"], r["subject"], r["detail"])
        if r["hash"] != want:
            if r["hash"] is None:
                return "audit entry %s: no hash (written around the store)" % r["id"]
            after = "the start" if last_id is None else "entry %s" % last_id
            return ("audit entry %s: the chain breaks here (this entry was edited, or one "
                    "between %s and it was deleted, inserted or moved)" % (r["id"], after))
        if anchor is not None and r["id"] == anchor[0]:
            if r["hash"] != anchor[1]:
                return "audit entry %s: differs from the kept head %s" % (r["id"], anchor[1][:16])
            seen_anchor = True
        prev, last_id = r["hash"], r["id"]
    if head is not None:
        hid, hhash = head
        if last_id is None or last_id != hid or prev != hhash:
            return ("audit head is entry %s, but the chain ends at %s: entries were cut off the "
                    "end" % (hid, "the start" if last_id is None else "entry %s" % last_id))
    elif last_id is not None:
        return "audit entries exist but the store has no chain head"
    if not seen_anchor:
        return "the kept head entry %s is no longer in the chain" % anchor[0]
    return None


def export(store):
    """The whole trail for an auditor: entries with hashes, the head, and
    whether the chain holds (a JSON-able dict; the reader can re-verify
    it with verify(doc["entries"], head))."""
    import datetime
    rows = store.audit_log(with_hash=True)
    head = store.audit_head()
    problem = verify(rows, head)
    for r in rows:
        r["time"] = datetime.datetime.fromtimestamp(r["at"], datetime.timezone.utc).isoformat()
    return {"format": "vitalnode-audit-1", "chain": "sha256(json([prev, repr(at), actor, action, "
            "subject, detail]))", "genesis": GENESIS, "entries": rows,
            "head": "%d:%s" % head if head else None, "chain_ok": problem is None,
            "problem": problem,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
