"""The security half of `make campaign` (tools/seccampaign.py): every
attack class of issue 19 tried against the real tools gets through zero
times; the figures are there (their values are the campaign's, not
asserted here: they are wall-clock measurements)."""
from tools import seccampaign


def test_every_attack_class_is_refused_and_every_figure_is_reported(tmp_path):
    r = seccampaign.run(workdir=tmp_path, log=lambda s: None)
    for k in ("id_injection", "cross_device_update", "manifest_ambiguity", "shadowing_path",
              "stale_or_future_time"):
        assert r[k + "_tried"] > 0 and r[k + "_accepted"] == 0, (k, r)
    assert r["oversize_sent"] == 2 and r["oversize_delivered"] == 0
    assert r["flood_gateway_counts"]["limited"] > 2000  # the flood was counted, not stored
    assert r["refusal_log_rows_after_flood"] <= 4
    assert r["flood_delay_ms_other_device"] >= 0 and r["revoked_session_seconds"] > 0
    assert r["crashes"] == 0 and r["errors"] == []
