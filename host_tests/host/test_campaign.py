"""The telemetry outage campaign (tools/campaign.py, `make campaign`) in
short, and the proof that the timer pump is what keeps sampling alive
while the uplink is stuck in a dead broker's timeout."""
import pytest

from tools import campaign


def test_a_short_outage_campaign_delivers_every_frame_once_and_refuses_attacks(tmp_path):
    r = campaign.run(outages=8, seed=3, log=lambda s: None, workdir=tmp_path)
    assert r["frames_produced"] > 30 and r["alerts_produced"] > 0
    assert r["frames_lost"] == 0 and r["alerts_lost"] == 0
    assert r["frames_delivered"] == r["frames_produced"] - r["frames_dropped"]
    assert r["samples_lost_during_stalls"] == 0 and r["samples_lost"] == 0
    assert r["timing"] == "typical" and 0 < r["fifo_fill_max"] <= 28
    assert 0 < r["pump_latency_ms_max"] < 160 and r["handshakes"] >= 1
    assert r["replays_sent"] > 0 and r["replayed_accepted"] == 0
    assert r["forged_sent"] == 20 and r["forged_accepted"] == 0
    assert r["gateway_counts"]["forged"] == 20


@pytest.mark.parametrize("pumped", [True, False])
def test_samples_survive_a_dead_broker_only_because_the_timer_drains_the_fifo(pumped):
    import simboard
    import vclock
    from simnet import SimNet

    from firmware import keystore, storage
    b = simboard.new_board(uid=bytes.fromhex("240ac4000009"))
    b.wifi.add_ap("ward", "ward-password")
    storage.use(b.fs)
    keystore.install("11" * 32, 1)
    net = SimNet({"ca": "rsa3072", "server": "rsa2048"})
    net.blackhole = True
    node = campaign.Node(b, "240ac4000009", 9, "-----BEGIN CERTIFICATE-----\nAA==\n-----END "
                         "CERTIFICATE-----\n", net)
    if not pumped:
        node.pump.stop()  # the sampler would only run between network calls
    for _ in range(200):  # 10 s: WiFi comes up, then connects hang 5 s each
        if not pumped:
            node.wdt.feed()
            if node.smp.due():
                node.smp.service()
        node.up.service(node.box)
        vclock.clock.sleep_us(50000)
    assert net.stalls_ms >= 5000 and node.up.failures >= 1
    if pumped:
        assert node.lost_samples() == 0 and node.smp.times.head > 1900
    else:
        assert node.lost_samples() > 500  # a 5 s stall: 1000 samples, the FIFO keeps 32
