"""pytest wiring: device tests (host_tests/device) import device code and
the shims through tools.hostshims; each gets a fresh simulated node, whose
flash model is the firmware's filesystem (firmware.storage)."""
import pytest

from tools import hostshims

hostshims.install()


@pytest.fixture(autouse=True)
def _fresh_board(request):
    if "host_tests/device" in str(request.node.fspath).replace("\\", "/"):
        import simboard

        from firmware import storage
        storage.use(simboard.new_board().fs)
    yield
