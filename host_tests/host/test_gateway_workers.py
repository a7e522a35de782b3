"""Several gateway workers on one stream: the load test's machinery, small
and time-compressed (30 nodes, one frame per second each, for 3 s), over
real TLS MQTT to mosquitto and a real PostgreSQL. With two workers in an
MQTT shared subscription, every frame is stored exactly once - including
the copies the nodes publish again, whichever worker receives them - and
every frame is acknowledged. The summary has exactly the keys the issue
names."""
import json

from tools.gateway.loadtest import KEYS, run


def test_two_workers_share_the_stream_and_store_each_frame_once(tmp_path):
    logs = []
    entries = run(nodes=30, seconds=3, period=1.0, configs=(("sqlite", 1), ("postgresql", 2)),
                  out_dir=tmp_path / "out", workdir=tmp_path / "work", log=logs.append)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == entries and [tuple(e) for e in summary] == [KEYS, KEYS]
    details = json.loads((tmp_path / "out" / "details.json").read_text())["configurations"]
    for e, d in zip(entries, details):
        assert e["frames_sent"] >= 60 and e["frames_stored"] == e["frames_sent"], logs
        assert d["resent"] >= 3 and e["duplicates"] >= d["resent"], (e, d)
        assert d["acked"] == e["frames_sent"] and d["bad_acks"] == 0 and not d["refused_other"]
        assert e["p99_ms"] is not None and e["p99_ms"] < 5000
    assert details[1]["workers"] == 2 and "postgresql" in details[1]["cpu_pct"]
    per_worker = [c["stored"] for c in details[1]["worker_counts"]]
    assert len(per_worker) == 2 and min(per_worker) > 0  # the broker shared the stream
    assert sum(per_worker) == entries[1]["frames_stored"]
