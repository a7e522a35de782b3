"""Host side of OTA: signing keys, bundles (build, sign, verify) and a local
update server. `python -m tools.ota --help`."""
