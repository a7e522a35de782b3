"""OTA on the node: RSA-3072-PSS verification, the manifest rules, install
into the inactive slot, trial boots with confirm and automatic revert, the
MicroPython image path, and security events - on CPython and both VMs."""
import hashlib
import json

import stage0
import otafixture as fx
import rsapss
import simboard
from devtest import raises

from firmware import clock, keystore, ota, otamanifest, otatrial, seclog, storage
from firmware.otamanifest import OtaError

NOW = 1800000000
V1 = {"firmware/app.py": b"print('app v1')\n", "lib/x.py": b"X = 1\n"}


def deployed(ver="1.0.0", ctr=1):
    fx.deployed(V1, otamanifest.version_code(ver), ctr)


def slot_files(root):
    out = {}

    def walk(d):
        for e in storage.fs().ilistdir(d):
            p = d + "/" + e[0]
            if e[1] == 0x4000:
                walk(p)
            else:
                with storage.fs().open(p, "rb") as f:
                    out[p[len(root) + 1:]] = f.read()
    if storage.exists(root):
        walk(root)
    out.pop("manifest.vnm", None)
    return out


def reasons():
    return [e.get("reason") for e in seclog.events() if e["ev"] == "ota-reject"]


def test_pss_verify_accepts_a_valid_signature_and_nothing_else():
    msg = b"vitalnode"
    sig = fx.sign(msg)
    digest = hashlib.sha256(msg).digest()
    assert rsapss.verify(fx.N, sig, digest)
    assert not rsapss.verify(fx.N, sig, hashlib.sha256(b"vitalnodf").digest())
    assert not rsapss.verify(fx.OTHER_N, sig, digest)
    for i in (0, 100, 383):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        assert not rsapss.verify(fx.N, bytes(bad), digest)
    assert not rsapss.verify(fx.N, sig[:-1], digest)
    assert not rsapss.verify(fx.N, fx.N.to_bytes(384, "big"), digest)  # s >= n
    assert not rsapss.verify(fx.N, bytes(384), digest)


def test_envelope_signature_is_checked_before_the_json_is_read():
    env = fx.envelope(fx.manifest())
    assert otamanifest.open_signed(env, fx.N).version == "1.1.0"
    assert raises(OtaError, otamanifest.open_signed, env, fx.OTHER_N).reason == "signature"
    junk = fx.envelope(None, raw=b"{not json")  # signed garbage: schema, not a crash
    assert raises(OtaError, otamanifest.open_signed, junk, fx.N).reason == "schema"
    forged = env[:-2] + b" }"
    assert raises(OtaError, otamanifest.open_signed, forged, fx.N).reason == "signature"
    assert raises(OtaError, otamanifest.open_signed, b"VNOTA1\n", fx.N).reason == "format"
    assert raises(OtaError, otamanifest.open_signed, b"X" + env[1:], fx.N).reason == "format"
    big = fx.envelope(None, raw=b" " * (otamanifest.MANIFEST_MAX + 1))
    assert raises(OtaError, otamanifest.open_signed, big, fx.N).reason == "size"


def test_signed_manifests_that_break_the_rules_are_refused():
    cases = [
        ({"version": "1.1"}, "schema"), ({"counter": -1}, "schema"), ({"counter": True}, "schema"),
        ({"format": 2}, "format"), ({"product": "other"}, "schema"), ({"bound": 1}, "schema"),
        ({"max_file": 10 ** 9}, "schema"), ({"files": []}, "schema"), ({"extra": 1}, "schema"),
        ({"image": {"size": 1}}, "schema"), ({"max_total": 10}, "size"),
    ]
    for p in ("../boot.py", "/firmware/app.py", "boot.py", "firmware/../../x.py", "lib/.hidden.py",
              "firmware/app.exe", "lib//x.py", "lib/a b.py", "firmware/" + "x" * 70 + ".py"):
        cases.append(({"files": [{"path": "firmware/app.py", "size": 1, "sha256": "0" * 64},
                                 {"path": p, "size": 1, "sha256": "0" * 64}]}, "path"))
    cases.append(({"files": [{"path": "lib/x.py", "size": 1, "sha256": "0" * 64}]}, "schema"))
    cases.append(({"files": [{"path": "firmware/app.py", "size": 1, "sha256": "0" * 64}] * 2}, "path"))
    cases.append(({"files": [{"path": "firmware/app.py", "size": 1, "sha256": "G" * 64}]}, "schema"))
    for change, why in cases:
        env = fx.envelope(fx.manifest(**change))
        e = raises(OtaError, otamanifest.open_signed, env, fx.N)
        assert e.reason == why, (change, e.reason, e.detail)


def test_the_push_and_the_installer_agree_on_the_manifest_buffer():
    from firmware import otapush
    assert otapush.BUF_LEN == ota.BUF_LEN and otapush.CHUNK_LEN == ota.CHUNK_LEN
    assert ota.BUF_LEN == len(otamanifest.MAGIC) + otamanifest.SIG_LEN \
        + otamanifest.MANIFEST_MAX


def test_policy_refuses_other_hardware_downgrade_rollback_and_expiry():
    def m(**kw):
        return otamanifest.open_signed(fx.envelope(fx.manifest(**kw)), fx.N)
    v110 = otamanifest.version_code("1.1.0")
    otamanifest.check(m(), "vitalnode-esp32", v110 - 1, 1, NOW)
    assert raises(OtaError, otamanifest.check, m(hw="other"), "vitalnode-esp32", 0, 0, NOW).reason == "hw"
    assert raises(OtaError, otamanifest.check, m(), "vitalnode-esp32", v110, 0, NOW).reason == "downgrade"
    assert raises(OtaError, otamanifest.check, m(counter=1), "vitalnode-esp32", 0, 2, NOW).reason == "rollback"
    exp = m(expires=NOW - 1)
    assert raises(OtaError, otamanifest.check, exp, "vitalnode-esp32", 0, 0, NOW).reason == "expired"
    future = m(created=NOW + otamanifest.SKEW_S + 1, expires=NOW + 86400)
    assert raises(OtaError, otamanifest.check, future, "vitalnode-esp32", 0, 0, NOW).reason == "time"
    otamanifest.check(m(created=NOW + otamanifest.SKEW_S), "vitalnode-esp32", 0, 0, NOW)
    # no clock (0): the floor - the newest `created` ever accepted - decides
    otamanifest.check(m(), "vitalnode-esp32", 0, 0, 0, NOW)
    assert raises(OtaError, otamanifest.check, exp, "vitalnode-esp32", 0, 0, 0, NOW).reason == "expired"


def test_install_stages_the_inactive_slot_and_confirm_advances_the_counter():
    deployed()
    files = {"firmware/app.py": b"print('v2')\n", "lib/y.py": b"Y = 2\n" * 500}
    src = fx.bundle(files, version="1.1.0", counter=5)
    ota.install(src, None, fx.N, now_s=NOW)
    assert slot_files("b") == files and slot_files("a") == V1  # running slot untouched
    st = stage0.state()
    assert st["pend"] == 1 and st["ctr"] == 1 and st["pver"] == 1001000
    assert otatrial.pending()
    assert raises(OtaError, ota.install, fx.bundle(version="1.2.0"), None, fx.N, now_s=NOW).reason == "busy"
    simboard.board.reset(simboard.SOFT_RESET)
    assert stage0.choose() == (1, True)
    assert stage0.state()["ctr"] == 1  # first boot of the trial: counter unchanged (MCUboot #2282)
    assert otatrial.confirm()
    st = stage0.state()
    assert (st["act"], st["pend"], st["ctr"], st["ver"]) == (1, -1, 5, 1001000)
    assert not otatrial.confirm()
    assert [e["ev"] for e in seclog.events()][-3:] == ["ota-install", "ota-reject", "ota-confirm"]
    # the next update goes to slot a, the one that is now inactive
    ota.install(fx.bundle({"firmware/app.py": b"v3"}, version="1.2.0", counter=5), None, fx.N, now_s=NOW)
    assert slot_files("a") == {"firmware/app.py": b"v3"} and slot_files("b") == files


def test_a_trial_that_never_confirms_is_reverted_after_max_tries():
    deployed()
    ota.install(fx.bundle(counter=9), None, fx.N, now_s=NOW)
    for _ in range(stage0.MAX_TRIES):
        simboard.board.reset(simboard.WDT_RESET)
        assert stage0.choose() == (1, True)
    simboard.board.reset(simboard.WDT_RESET)
    assert stage0.choose() == (0, False)
    st = stage0.state()
    assert (st["act"], st["pend"], st["ctr"], st["last"]) == (0, -1, 1, 1)  # counter never moved
    otatrial.at_start()
    assert seclog.events()[-1]["ev"] == "ota-revert" and stage0.state()["last"] == 0
    assert otatrial.reverted() == otamanifest.version_code("1.1.0")
    # the reverted bundle is refused from now on, and so is any version not newer
    for again in (fx.bundle(counter=9), fx.bundle(counter=10, created=NOW - 5)):
        assert raises(OtaError, ota.install, again, None, fx.N, now_s=NOW).reason == "reverted"
    assert reasons()[-2:] == ["reverted", "reverted"] and stage0.state()["pend"] == -1
    ota.install(fx.bundle(version="1.1.1", counter=9), None, fx.N, now_s=NOW)  # a newer one
    assert stage0.state()["pend"] == 1


def test_the_confirm_deadline_resets_a_trial_that_hangs():
    import time
    deployed()
    ota.install(fx.bundle(), None, fx.N, now_s=NOW)
    simboard.board.reset(simboard.SOFT_RESET)
    assert stage0.choose() == (1, True)
    stage0.arm_deadline()
    t0 = time.ticks_ms()
    e = raises(simboard.NodeReset, time.sleep_ms, stage0.CONFIRM_MS + stage0.DEADLINE_CHECK_MS)
    assert e.cause == simboard.HARD_RESET
    assert stage0.CONFIRM_MS <= time.ticks_diff(time.ticks_ms(), t0) <= (
        stage0.CONFIRM_MS + stage0.DEADLINE_CHECK_MS)
    # a confirmed trial lets the deadline pass
    simboard.board.reset(e.cause)
    assert stage0.choose() == (1, True)
    stage0.arm_deadline()
    otatrial.confirm()
    time.sleep_ms(stage0.CONFIRM_MS + 3 * stage0.DEADLINE_CHECK_MS)


def test_the_deadline_survives_a_tick_the_full_scheduler_queue_drops():
    """The port drops a scheduled callback silently when its 8-entry queue
    is full: the periodic check still resets the trial, one tick later."""
    import time

    import vclock
    deployed()
    ota.install(fx.bundle(), None, fx.N, now_s=NOW)
    simboard.board.reset(simboard.SOFT_RESET)
    assert stage0.choose() == (1, True)
    stage0.arm_deadline()
    clk = simboard.board.clock
    due = clk.now_us + stage0.CONFIRM_MS * 1000
    clk.advance_to(due - 1)  # hardware time only: nothing Python runs
    for _ in range(vclock.SCHED_DEPTH):  # the queue fills, as a storm of ticks would
        clk.schedule(lambda a: None, None)
    clk.advance_to(due + 1)  # the deadline's tick: dropped
    assert clk.sched_dropped >= 1
    e = raises(simboard.NodeReset, time.sleep_ms, 2 * stage0.DEADLINE_CHECK_MS)
    assert e.cause == simboard.HARD_RESET


def test_rejections_are_security_events_and_leave_the_node_unchanged():
    import gc
    gc.collect()  # the 20 KB manifest below needs one free run of the test VM's 1 MB heap
    deployed(ver="1.1.0", ctr=3)
    before = stage0.state()
    ok = {"version": "1.2.0", "counter": 3}
    bad_hash = fx.bundle(**ok)
    bad_hash.parts["files/firmware/app.py"] = b"print('evil!!')\n"
    longer = fx.bundle(**ok)
    longer.parts["files/firmware/app.py"] = fx.APP + b"#"
    endless = fx.bundle(**ok)
    endless.parts["manifest.vnm"] += b" " * 20000
    cases = [(fx.bundle(version="1.1.0", counter=3), "downgrade"),
             (fx.bundle(version="1.2.0", counter=2), "rollback"),
             (fx.bundle(version="1.2.0", counter=3, hw="vitalnode-nrf52"), "hw"),
             (fx.bundle(version="1.2.0", counter=3, expires=NOW - 5), "expired"),
             (fx.bundle(version="1.2.0", counter=3, n=fx.OTHER_N, d=fx.OTHER_D), "signature"),
             (bad_hash, "hash"), (longer, "size"), (endless, "size"),
             (fx.MemSource({}), "io")]
    for src, why in cases:
        e = raises(OtaError, ota.install, src, None, fx.N, now_s=NOW)
        assert e.reason == why, (why, e)
        assert stage0.state() == before
        assert slot_files("a") == V1
    assert reasons() == [w for _, w in cases]


def test_a_manifest_of_announced_length_is_read_in_place_and_a_false_length_refused():
    # the update server states the length (Content-Length): the manifest is
    # read into one buffer of that size; a length that lies is refused
    deployed()
    good = fx.bundle(version="1.2.0")
    env = good.parts["manifest.vnm"]
    good.announce = {"manifest.vnm": len(env)}
    assert ota.install(good, None, fx.N, now_s=NOW).version == "1.2.0"
    for lie in (len(env) - 1, len(env) + 1):
        deployed()
        src = fx.bundle(version="1.2.0")
        src.announce = {"manifest.vnm": lie}
        assert raises(OtaError, ota.install, src, None, fx.N, now_s=NOW).reason == "size"
        assert stage0.state()["pend"] < 0  # nothing on trial
    # ota.update() hands install() a buffer made before anything else: read in
    # place and cut to size, the length announced or not
    cap = len(otamanifest.MAGIC) + otamanifest.SIG_LEN + otamanifest.MANIFEST_MAX
    for announce in ({"manifest.vnm": len(env)}, {}):
        deployed()
        src = fx.bundle(version="1.2.0")
        src.announce = announce
        assert ota.install(src, None, fx.N, now_s=NOW, buf=bytearray(cap)).version == "1.2.0"


def test_a_bound_bundle_installs_only_on_the_devices_its_signed_manifest_names():
    import binascii
    deployed()
    keystore.install(binascii.hexlify(bytes(range(1, 33))).decode(), 1)
    ks = keystore.load()
    # bound to another node: refused, even with this node's valid server tag
    other = fx.bundle(bound=True, devices=["240ac4000def", "240ac4000abc"])
    digest = otamanifest.open_signed(other.parts["manifest.vnm"], fx.N).digest
    other.parts["binding/" + ks.device_id] = ks.sign("ota-bind", digest)
    e = raises(OtaError, ota.install, other, ks, fx.N, now_s=NOW)
    assert e.reason == "binding" and ks.device_id in e.detail
    assert "binding/" + ks.device_id not in other.asked  # refused before asking the server
    assert raises(OtaError, ota.install, other, None, fx.N, now_s=NOW).reason == "binding"
    # named, but the server's tag is wrong: refused
    src = fx.bundle(bound=True, devices=["240ac4000def", ks.device_id])
    digest = otamanifest.open_signed(src.parts["manifest.vnm"], fx.N).digest
    src.parts["binding/" + ks.device_id] = bytes(32)
    assert raises(OtaError, ota.install, src, ks, fx.N, now_s=NOW).reason == "binding"
    src.parts["binding/" + ks.device_id] = ks.sign("ota-bind", digest)
    ota.install(src, ks, fx.N, now_s=NOW)
    assert "binding/" + ks.device_id in src.asked
    assert stage0.state()["pend"] == 1


def test_a_bound_manifest_must_name_its_devices_and_only_a_bound_one_may():
    for change in ({"bound": True}, {"bound": True, "devices": []},
                   {"bound": True, "devices": ["240AC4000DEF"]},
                   {"bound": True, "devices": ["gateway"]},
                   {"bound": True, "devices": ["240ac4000def", "240ac4000def"]},
                   {"bound": True, "devices": ["240ac4%06x" % i for i in range(65)]},
                   {"bound": True, "devices": "240ac4000def"},
                   {"bound": False, "devices": ["240ac4000def"]}):
        e = raises(OtaError, otamanifest.open_signed, fx.envelope(fx.manifest(**change)), fx.N)
        assert e.reason == "schema" and "devices" in e.detail or "bound" in e.detail, (change, e)


def test_an_image_goes_to_the_next_partition_and_a_bootloader_rollback_reverts_the_slot():
    import esp32
    deployed()
    image = fx.app_image(size=5100)
    ota.install(fx.bundle(image=image), None, fx.N, now_s=NOW)
    part = esp32.Partition("ota_1")
    buf = bytearray(len(image))
    part.readblocks(0, buf)
    assert bytes(buf) == image
    assert simboard.board.otadata.boot == "ota_1"
    simboard.board.reset(simboard.HARD_RESET)
    assert stage0.choose() == (1, True)  # running ota_1 as the trial expects
    # no confirm: the ESP-IDF bootloader rolls the image back at the next reset
    simboard.board.reset(simboard.HARD_RESET)
    assert simboard.board.otadata.running == "ota_0"
    assert stage0.choose() == (0, False)
    assert stage0.state()["last"] == 2
    otatrial.at_start()  # an image the bootloader did not run (or a power cut before
    assert otatrial.reverted() == 0  # set_boot) is not held against the bundle
    # confirm marks the image valid too
    ota.install(fx.bundle(image=image, version="1.2.0"), None, fx.N, now_s=NOW)
    simboard.board.reset(simboard.HARD_RESET)
    assert stage0.choose() == (1, True) and otatrial.confirm()
    assert simboard.board.otadata.state["ota_1"] == simboard.OtaData.VALID


def test_an_image_the_bootloader_refuses_leaves_no_trial_and_is_reported():
    import esp32
    deployed()
    bad = bytearray(fx.app_image(size=5100))
    bad[-1] ^= 1  # the appended SHA-256 no longer matches: esp_image_verify fails
    before = stage0.state()
    e = raises(ota.OtaError, ota.install, fx.bundle(image=bytes(bad)), None, fx.N, now_s=NOW)
    assert e.reason == "image"
    assert stage0.state() == before  # no trial, no floor moved
    assert simboard.board.otadata.boot == "ota_0"
    simboard.board.reset(simboard.HARD_RESET)
    assert stage0.choose() == (0, False)
    assert esp32.Partition(esp32.Partition.RUNNING).info()[4] == "ota_0"


def test_the_manifest_json_is_canonical_enough_to_round_trip():
    man = fx.manifest()
    env = fx.envelope(man)
    assert json.loads(env[len(otamanifest.MAGIC) + 384:]) == man


def _body_env(body):
    return fx.envelope(None, raw=body.encode() if isinstance(body, str) else body)


def test_ambiguous_manifest_json_is_refused_by_name():
    good = json.dumps(fx.manifest())
    assert otamanifest.open_signed(_body_env(good), fx.N).version == "1.1.0"
    cases = [
        (good.replace('"version": "1.1.0"', '"version": "1.1.0", "version": "9.9.9"'),
         "duplicate key 'version'"),
        (good[:-1] + ', "counter": 7}', "duplicate key 'counter'"),
        (good.replace('"1.1.0"', '"\u0661.\u0661.\u0660"'), "version must be X.Y.Z"),
        (good.replace('"1.1.0"', '"\uff11.1.0"'), "version must be X.Y.Z"),
        (good.replace('"counter": 1', '"counter": 2147483648'), "out of range"),
        (good.replace('"counter": 1', '"counter": 1e999999'), "not finite"),
        (good.replace('"counter": 1', '"counter": NaN'), "unexpected 'N'"),
        (good.replace('"counter": 1', '"counter": 1.0'), "counter must be an integer"),
        (good + " {}", "text after the value"),
    ]
    for body, why in cases:
        e = raises(OtaError, otamanifest.open_signed, _body_env(body), fx.N)
        assert e.reason == "schema" and why in e.detail, (body[:60], e.detail)


def test_no_bundle_path_may_shadow_what_stage0_or_the_installer_imports():
    for p in ("lib/boot.py", "lib/main.py", "lib/boot.mpy", "lib/stage0.mpy", "lib/nvsrec.py",
              "lib/hashlib.py", "lib/os.mpy", "lib/esp32.py", "lib/machine.py", "lib/ssl.py",
              "lib/json.py", "lib/firmware.py", "lib/firmware/ota.py", "lib/machine/x.py",
              "lib/binascii.mpy", "lib/micropython.py", "lib/time.py", "lib/sys.py"):
        files = [{"path": "firmware/app.py", "size": 1, "sha256": "0" * 64},
                 {"path": p, "size": 1, "sha256": "0" * 64}]
        e = raises(OtaError, otamanifest.open_signed, fx.envelope(fx.manifest(files=files)), fx.N)
        assert e.reason == "path" and "shadow" in e.detail, (p, e.detail)
    for p in ("lib/rsapss.mpy", "lib/umqtt/simple.py", "lib/qrs.py", "firmware/boot.py"):
        otamanifest.check_path(p)  # the slot's own modules may be updated


def test_the_time_floor_moves_on_confirm_and_a_reverted_update_takes_it_back():
    deployed()
    y2k = 946684800
    created = NOW - 1000
    ota.install(fx.bundle(counter=2, created=created), None, fx.N, now_s=NOW)
    assert stage0.state()["floor"] == 0  # staged, on trial: the floor has not moved
    for _ in range(stage0.MAX_TRIES + 1):
        simboard.board.reset(simboard.WDT_RESET)
        stage0.choose()
    otatrial.at_start()
    assert stage0.state()["act"] == 0 and stage0.state()["floor"] == 0  # reverted: no floor
    later = NOW - 500
    ota.install(fx.bundle(version="1.2.0", counter=2, created=later), None, fx.N, now_s=NOW)
    simboard.board.reset(simboard.HARD_RESET)
    assert clock.sync(NOW, 40)  # an acknowledgement's time: the clock is trusted
    assert stage0.choose() == (1, True) and otatrial.confirm()
    assert stage0.state()["floor"] == later - y2k  # confirmed: the floor is its created


def test_the_time_floor_never_passes_trusted_time_and_a_future_manifest_is_refused():
    deployed()
    y2k = 946684800
    year2037 = 2114380800
    # the clock is trusted: a manifest made more than SKEW_S ahead of it is refused by name
    src = fx.bundle(counter=2, created=NOW + clock.SKEW_S + 1, expires=year2037 + 86400)
    assert raises(OtaError, ota.install, src, None, fx.N, now_s=NOW).reason == "time"
    assert stage0.state()["pend"] < 0
    # no clock when it came (0): installed on the floor's word; confirmed without a clock,
    # the floor stays; it cannot be dragged to 2037 either way
    ota.install(fx.bundle(counter=2, created=year2037, expires=year2037 + 86400), None, fx.N,
                now_s=0)
    simboard.board.reset(simboard.HARD_RESET)
    assert clock.now_unix() == 0
    assert stage0.choose() == (1, True) and otatrial.confirm()
    assert stage0.state()["floor"] == 0
    # a later update, confirmed with a trusted clock: the floor is capped at now + SKEW_S
    ota.install(fx.bundle(version="1.2.0", counter=2, created=year2037 - 10,
                          expires=year2037 + 86400), None, fx.N, now_s=0)
    simboard.board.reset(simboard.HARD_RESET)
    assert clock.sync(NOW, 0)
    assert stage0.choose() == (0, True) and otatrial.confirm()
    floor = stage0.state()["floor"] + y2k
    assert NOW <= floor <= NOW + clock.SKEW_S + 2
    # so a normal update made today still installs
    ota.install(fx.bundle(version="1.3.0", counter=2, created=NOW - 60), None, fx.N, now_s=NOW)


def test_a_path_listed_twice_is_found_among_many_and_distinct_ones_all_pass():
    ent = [{"path": "lib/f%02d.py" % i, "size": 1, "sha256": "0" * 64}
           for i in range(24)]
    ent.append({"path": "firmware/app.py", "size": 1, "sha256": "0" * 64})
    m = otamanifest.open_signed(fx.envelope(fx.manifest(files=ent)), fx.N)
    assert m.nfiles == 25
    e = raises(OtaError, otamanifest.open_signed,
               fx.envelope(fx.manifest(files=ent + [ent[5]])), fx.N)
    assert e.reason == "path" and "lib/f05.py" in e.detail and "twice" in e.detail, e.detail
