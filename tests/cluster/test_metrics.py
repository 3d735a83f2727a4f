"""The metrics suite's Redis-heavy tests, on the cluster.

- test_apply: the apply script (dedup, ordering, expiry, rolling windows) and its reads;
- test_scenario: the consumer and every query route (bitmap algebra in run.lua, cohorts,
  leaderboards) over a hand-checked three-week scenario, replayed without a change;
- test_overview: 50 groups spread over the three masters, one overview.lua call each in a
  pipeline that spans every node, read through three tokens.
"""

from tests.metrics.test_apply import *  # noqa: F403
from tests.metrics.test_overview import *  # noqa: F403
from tests.metrics.test_scenario import *  # noqa: F403
