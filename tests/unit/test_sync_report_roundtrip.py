"""The agent's diffs and the cloud's merge are inverses: whatever sequence of states a device
goes through, a full report followed by diffs leaves the cloud holding the last state."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from iotistic_agent.cloud.report_builder import diff_fields
from iotistic_cloud.services.report_merge import merge_report

statuses = st.sampled_from(["Running", "Stopped", "ImagePullBackOff", "Pending"])
services = st.dictionaries(
    st.sampled_from(["web", "db", "cache"]),
    st.builds(lambda s: {"status": s, "restartCount": 0}, statuses),
    max_size=3,
)
apps = st.dictionaries(
    st.sampled_from(["1001", "1002", "1003"]),
    st.builds(lambda s: {"appId": 1, "appName": "a", "services": s}, services),
    max_size=3,
)
device_states = st.fixed_dictionaries(
    {
        "apps": apps,
        "targetVersion": st.integers(0, 5),
        "targetApplied": st.booleans(),
        "uptime": st.integers(0, 10**6),
    },
    optional={"cpu_usage": st.floats(0, 100), "config": st.just({"k": "v"})},
)


@settings(max_examples=300, deadline=None)
@given(states=st.lists(device_states, min_size=1, max_size=8))
def test_full_then_diffs_rebuild_the_last_state(states: list[dict[str, Any]]) -> None:
    held = merge_report(None, {"full": True, "sequence": 1, **states[0]})
    for sequence, (before, after) in enumerate(itertools.pairwise(states), 2):
        held = merge_report(held, {"sequence": sequence, **diff_fields(before, after)})
        # Fields the device stopped sending keep their last value (documented); the rest
        # equals the device's state exactly.
        assert {k: held[k] for k in after} == after
