"""Fuzz the node's manifest handling (tools/ota/fuzz.py): 8,000 mutated
signed envelopes, none accepted; 2,000 hostile manifests signed with the
real key, each refused with OtaError or meeting the rules stated
independently in the fuzzer. No other exception in either family."""
from tools.ota import fuzz


def test_ten_thousand_mutated_and_hostile_manifests_are_refused_cleanly():
    n = fuzz.run()
    assert n >= 10000
