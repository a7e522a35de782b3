"""Authenticated OTA on the node: install a signed bundle into the inactive
app slot (firmware/otatrial.py confirms it after a health check).

    from firmware import ota
    ota.install(src, keystore, pubkey_n)   # OtaError on any rejection
    ota.update("http://updates.local:8070/")  # the same, keys from config
    machine.reset()                         # stage0 tries the new slot
    ...
    otatrial.confirm()                      # once the app is healthy

`src` fetches a bundle's parts by name with a byte cap: src.fetch(name,
cap) -> reader (readinto(buf) -> n, 0 at the end; close()). Names:
"manifest.vnm", "files/<path>", "image.bin", "binding/<device id>".
firmware/httpget.HttpSource is the network one.

Order (MCUboot/TUF): manifest signature, then policy (hardware, newer
version, security counter, newer than the last reverted trial, expiry,
per-device binding: the signed manifest must name this device, then the
server's tag must verify), then each file is
streamed into the inactive slot while hashed and capped at its signed size,
then the optional MicroPython image into the next app partition, then ONE
NVS commit makes the slot the trial, then set_boot() for an image. The
security counter and the time floor (the newest confirmed `created`)
advance only in otatrial.confirm(), never on a first boot, so a reverted
update moves neither.
Guarantees: the running slot is never written; a power loss at any point
leaves the node booting the old slot or a complete, verified new one;
every rejection, install, confirm and revert is a security event.
Non-guarantee: a slot is hashed while written, not re-read afterwards.
"""
import hashlib

import stage0
from firmware import otatrial, seclog, storage
from firmware.clock import now_unix
from firmware.otamanifest import (IMAGE_MAX, MAGIC, MANIFEST_MAX, SIG_LEN, OtaError, check,
                                  check_device, open_signed)
from micropython import const

HW_MODEL = "vitalnode-esp32"
_CHUNK = const(1024)
CHUNK_LEN = const(1024)  # _CHUNK, for otapush's buffer
BUF_LEN = const(7 + 384 + 8192)  # len(MAGIC) + SIG_LEN + MANIFEST_MAX: the manifest's buffer
_Y2K = const(946684800)  # Unix seconds at 2000-01-01, the NVS time base


def _read_all(src, name, cap, into=None):
    """The whole of part `name` (at most cap bytes): a bytearray, or with
    into (a bytearray of at least cap bytes, which update() makes first,
    while the heap still has large holes) a memoryview of it.
    Otherwise, when the source knows its length (HttpSource does), one
    buffer of exactly that size: no growing copies."""
    r = src.fetch(name, cap)
    try:
        n = getattr(r, "length", -1)
        if into is None and 0 <= n <= cap:
            into = bytearray(n)
        if into is not None:
            mv = memoryview(into)
            lim = n if 0 <= n <= cap else cap
            got = 0
            while got < lim:
                k = r.readinto(mv[got:lim])
                if not k:
                    if n >= 0:
                        raise OtaError("size", "%s shorter than %d bytes" % (name, n))
                    break
                got += k
            if r.readinto(bytearray(1)):
                raise OtaError("size", "%s longer than %d bytes" % (name, lim))
            return mv[:got]  # a view: MicroPython's bytearray cannot shrink in place
        out = bytearray()
        buf = bytearray(_CHUNK)
        while True:
            k = r.readinto(buf)
            if not k:
                return out
            out.extend(buf[:k])
            if len(out) > cap:
                raise OtaError("size", "%s longer than %d bytes" % (name, cap))
    finally:
        r.close()


def _stream(src, name, size, sha_hex, sink, chunk=None):
    """Copy `size` bytes of `name` to sink(mv, n) while hashing; OtaError
    if it is shorter, longer or hashes differently. chunk: the caller's
    buffer to read into (one made before the download, so the node never
    needs a new 1 KB hole), else a new one."""
    mv = memoryview(chunk if chunk is not None else bytearray(_CHUNK))
    buf = mv
    r = src.fetch(name, size)
    h = hashlib.sha256()
    got = 0
    try:
        while True:
            n = r.readinto(buf)
            if not n:
                break
            got += n
            if got > size:
                raise OtaError("size", "%s longer than its signed size %d" % (name, size))
            h.update(mv[:n])
            sink(mv, n)
    finally:
        r.close()
    if got != size:
        raise OtaError("size", "%s is %d bytes, signed size %d" % (name, got, size))
    if _hex(h.digest()) != sha_hex:
        raise OtaError("hash", "%s does not match its signed SHA-256" % name)


def _hex(b):
    import binascii
    return binascii.hexlify(b).decode()


def install(src, keystore, pubkey_n, hw=HW_MODEL, now_s=None, buf=None, chunk=None):
    """Fetch, verify and stage a bundle as the trial slot; returns the
    Manifest. Every refusal is recorded and raised as OtaError. buf: a
    bytearray of BUF_LEN bytes for the manifest (sjson parses it in place);
    chunk: one of CHUNK_LEN bytes, the files' read buffer (each made by the
    caller while the heap still has holes that size; None: made here)."""
    version = None
    try:
        st = stage0.state()
        if st["pend"] >= 0:
            raise OtaError("busy", "an update is on trial; confirm or revert it first")
        env = _read_all(src, "manifest.vnm", len(MAGIC) + SIG_LEN + MANIFEST_MAX, buf)
        m = open_signed(env, pubkey_n)
        version = m.version
        floor = st["floor"] + _Y2K if st["floor"] else 0
        check(m, hw, st["ver"], st["ctr"], now_unix() if now_s is None else now_s, floor,
              otatrial.reverted())
        if m.bound:
            check_device(m, keystore.device_id if keystore else None)  # signed: names us?
            tag = _read_all(src, "binding/" + keystore.device_id, 32)
            if not keystore.verify("ota-bind", tag, m.digest):
                raise OtaError("binding", "bundle is bound to another device")
        slot = 1 - st["act"]
        _write_slot(src, m, stage0.SLOTS[slot], env, chunk)
        changes = {"pend": slot, "tries": 0, "pver": m.version_code, "pctr": m.counter,
                   "img": 0}
        # the time floor moves only when the trial is confirmed (otatrial.confirm), so a
        # reverted update takes its floor change back with it
        import esp32
        nvs = esp32.NVS(stage0.NS)
        nvs.set_i32(otatrial.PFLOOR, m.created - _Y2K)
        nvs.commit()
        part = None
        if m.image:
            part = _write_image(src, m.image)
            changes["img"] = 1
            changes["ipart"] = stage0.part_index(part)
        stage0.commit(changes)
        if part is not None:
            try:  # after the commit: stage0 abandons a trial whose image did not switch
                part.set_boot()  # the bootloader's own image check (ESP_ERR_OTA_VALIDATE_FAILED)
            except OSError as e:
                stage0.commit({k: st[k] for k in changes})  # the state before, whole  # pyright: ignore[reportArgumentType]  (keys of stage0's record)
                raise OtaError("image", "the bootloader refused the image (%s)" % e)
    except OtaError as e:
        seclog.record("ota-reject", reason=e.reason, detail=e.detail, version=version)
        raise
    except OSError as e:  # network or flash (full, failing), the download's deadline
        why = getattr(e, "reason", "io")  # httpget.Deadline: "deadline"; the old slot is untouched
        seclog.record("ota-reject", reason=why, detail=str(e), version=version)
        raise OtaError(why, str(e))
    seclog.record("ota-install", version=m.version, counter=m.counter, slot=stage0.SLOTS[slot],
                  image=bool(m.image))
    return m


def update(url, timeout_ms=10000, deadline_ms=None, buf=None):
    """install() from an update server with what the node was provisioned
    with: its key (for bound bundles), the OTA public key from config.json
    and, for https, the site CA (config ca_cert). timeout_ms bounds each
    socket call, deadline_ms the whole download (default
    httpget.DEADLINE_MS: 5 min). Returns the Manifest;
    reset afterwards to try it. ConfigError if the node has no valid
    config (nothing is fetched then). Nothing samples meanwhile:
    firmware/otapush.run (what `make ota-push` runs) is this with the
    sensor, the detector and the pump going on."""
    # the manifest's buffer first, while the heap (fresh after the push's soft
    # reset) has holes that size: the imports and config below leave small ones
    if buf is None:
        buf = bytearray(BUF_LEN)
    from firmware import config, keystore
    from firmware.httpget import DEADLINE_MS, HttpSource
    ks = keystore.load()
    cfg = config.load(ks.device_id if ks else None)
    ca = config.pem_der(cfg["ca_cert"]) if url.startswith("https://") else None
    src = HttpSource(url, ca, timeout_ms, deadline_ms or DEADLINE_MS)  # HttpSource takes DER
    return install(src, ks, int(cfg["ota_pubkey"]["n"], 16), buf=buf)


def _write_slot(src, m, root, env, chunk=None):
    storage.remove_tree(root)  # the inactive slot: stale or half-written
    fs = storage.fs()
    for f in m.each_file():  # one entry at a time, parsed from the signed text
        path = root + "/" + f["path"]
        storage.makedirs(path[:path.rfind("/")])
        with fs.open(path, "wb") as out:
            _stream(src, "files/" + f["path"], f["size"], f["sha256"],
                    lambda mv, n: out.write(mv[:n]), chunk)
    with fs.open(root + "/manifest.vnm", "wb") as out:  # what the slot holds, for status
        out.write(env)


def _write_image(src, img):
    import esp32
    # the 1.27 stubs type Partition's id as str (RUNNING is an int) and ioctl() as Optional
    part = esp32.Partition(esp32.Partition.RUNNING).get_next_update()  # pyright: ignore[reportArgumentType]
    if img["size"] > min(IMAGE_MAX, part.ioctl(4, 0) * 4096):  # pyright: ignore[reportOperatorIssue]
        raise OtaError("size", "image larger than the app partition")
    block = bytearray(4096)
    at = [0, 0]  # bytes in block, block number

    def sink(mv, n):
        i = 0
        while i < n:
            k = min(n - i, 4096 - at[0])
            block[at[0]:at[0] + k] = mv[i:i + k]
            at[0] += k
            i += k
            if at[0] == 4096:
                part.writeblocks(at[1], block)
                at[0] = 0
                at[1] += 1
    _stream(src, "image.bin", img["size"], img["sha256"], sink)
    if at[0]:
        for i in range(at[0], 4096):
            block[i] = 0xFF
        part.writeblocks(at[1], block)
    return part
