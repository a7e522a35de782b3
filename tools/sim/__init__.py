"""`make sim`: the whole node simulated on the desktop (see __main__)."""
from tools.sim.runner import (SIM_DEVICE_ID, pleth_cache, run_cpython_node,  # noqa: F401
                              run_micropython_node, sensor_spec)
