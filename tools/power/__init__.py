"""The node's energy model: supply current per state (table.py, with its
sources) times the time the simulated node spent in each state
(tools/shims/powerstate.py) -> average current and battery life (model.py).
docs/power.md explains the figures and what they leave out."""
