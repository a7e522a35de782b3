"""Provisioning: give a node its identity and configuration over USB.

    python -m tools.provision provision --port /dev/ttyUSB0 [--config site.json]
    python -m tools.provision verify --port /dev/ttyUSB0
    python -m tools.provision revoke <device-id> [--reason TEXT]
    python -m tools.provision list

Modules: keys (key generation and the derivations the firmware also
makes), registry (the SQLite device registry), site (site configuration ->
the node's config.json; development PKI), board (the mpremote session
with the node), image (the same result for a simulated node).
"""
