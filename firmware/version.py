"""The firmware version this tree builds: `make ota-bundle` signs it into a
bundle's manifest and `make deploy` records it as the confirmed slot's
version (OTA refuses anything not newer)."""
VERSION = "0.6.0"
