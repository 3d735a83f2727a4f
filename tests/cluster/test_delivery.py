"""The delivery suite's Redis-heavy tests, on the cluster: pace.lua's token buckets and
pauses (a source's and each group's, in their own slots, so on different masters), a
rate-limit hint that pauses every replica, and a slow group that holds no other group."""

from tests.delivery.conftest import clean_double, delivery, delivery_config, double  # noqa: F401
from tests.delivery.test_faults import (  # noqa: F401
    test_a_slow_group_holds_no_other_group_and_keeps_its_order,
    test_rate_limit_hints_are_honoured,
)
from tests.delivery.test_pacing_and_use_cases import (  # noqa: F401
    test_an_empty_source_bucket_refunds_the_group_token,
    test_buckets_space_posts_and_pauses_hold_everyone,
)
