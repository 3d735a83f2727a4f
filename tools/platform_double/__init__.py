"""A stand-in for Telegram, Slack, Feishu/Lark, OneBot and WeCom that tests and `make demo` use.

One HTTP server speaks the subset of each platform API the outbound clients call, checks
requests the way the platform does, keeps each fake group's state, records every call with
its time, and plays faults on demand (429 with the platform's hint, 5xx, timeouts,
permission errors). `DoubleConfig` says how strict it is, which OneBot implementation it
answers as and what that one lacks, and WeCom's visible range. `start_double()` runs it on
a free port in a thread.
"""

from tools.platform_double.server import DoubleHandle, start_double
from tools.platform_double.state import Call, DoubleConfig, DoubleState, Fault, Group, Message

__all__ = [
    "Call",
    "DoubleConfig",
    "DoubleHandle",
    "DoubleState",
    "Fault",
    "Group",
    "Message",
    "start_double",
]
