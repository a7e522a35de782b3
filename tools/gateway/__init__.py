"""The gateway: verifies, de-duplicates, stores and exports node telemetry."""
