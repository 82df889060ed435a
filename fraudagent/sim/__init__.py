"""The simulated game store: customers, events, fraud storylines with ground truth, alerts as case bundles,
and the past-case history. Its events are scored with the reference rules scorer of `fraudagent.risk`."""

from fraudagent.sim.export import write_world
from fraudagent.sim.world import DEFAULT_END, World, generate_world

__all__ = ["DEFAULT_END", "World", "generate_world", "write_world"]
