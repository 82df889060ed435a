"""The simulated game store: customers, events, fraud storylines with ground truth, the
reference risk scorer, alerts as case bundles, and the past-case history."""

from fraudagent.sim.export import write_world
from fraudagent.sim.risk import SCORER_VERSION, event_features, score_events
from fraudagent.sim.world import DEFAULT_END, World, generate_world

__all__ = ["DEFAULT_END", "SCORER_VERSION", "World", "event_features", "generate_world", "score_events", "write_world"]
