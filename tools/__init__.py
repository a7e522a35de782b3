"""VitalNode host tools (CPython). Run them as `python -m tools.<name>`."""
