"""Deprecated: the webhook checks moved to services/platforms/<platform>/inbound.py.

A thin re-export kept only for callers outside ingest's files (tests/faults,
tools/bench_ingest.py) until they import from services.platforms; nothing in ingest uses it.
"""

from services.platforms.feishu.inbound import encrypt_feishu, feishu_signature
from services.platforms.generic.inbound import generic_signature
from services.platforms.slack.inbound import slack_signature

__all__ = ["encrypt_feishu", "feishu_signature", "generic_signature", "slack_signature"]
