"""A simulated node's telemetry over a real broker on MicroPython (unix
port: real socket and ssl): `micropython tools/vm/uplink_node.py DEVICE
ROOT_KEY_FILE CA_PEM_FILE PORT N`. Seals N vitals frames with the keystore
on the VM, publishes them with the uplink (umqtt.simple + netguard, TLS to
localhost) until the gateway has acknowledged every one, prints
`UPLINK-RESULT <json>`."""
import json
import sys

import esp32
import simboard
from firmware import frames, keystore, outbox, storage
from firmware.seqno import SeqNo
from firmware.telemetry import Telemetry
from firmware.uplink import Uplink


def main():
    dev, key_file, ca_file, port, n = sys.argv[1:6]
    b = simboard.new_board(uid=bytes.fromhex(dev))
    storage.use(b.fs)
    with open(key_file) as f:
        keystore.install(f.read().strip(), 1)
    ks = keystore.load()
    box = outbox.Outbox()
    tm = Telemetry(ks, box, SeqNo(esp32.NVS("vn_tel")), 6000, clock=lambda: 1800000000)
    for i in range(int(n)):
        hdr = tm._hdr()
        tm._put(frames.VITALS, hdr, frames.vitals(hdr, 600 + i, 950, 70, 0, [(i * 900, 900)]))
    with open(ca_file) as f:
        ca = f.read()
    up = Uplink(dev, {"host": "localhost", "port": int(port)}, ca, ks.broker_password(),
                ack_check=tm.ack_seq)
    for _ in range(20000):  # non-blocking reads: the acknowledgements come in real time
        up.service(box)
        if box.depth == 0:
            break
    print("UPLINK-RESULT " + json.dumps({"up": up.up, "queued": box.depth, "published": up.published,
                                         "acked": up.acked, "error": up.last_error}))
    up.close()


main()
