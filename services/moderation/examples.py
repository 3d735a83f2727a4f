"""The request examples the OpenAPI document shows beside each body (Swagger UI's picker)."""

from __future__ import annotations

from typing import Any

from services.moderation.models import POLICY_EXAMPLE
from services.moderation.params import PARAMS, RULE_KINDS
from services.moderation.rule_bodies import example_rule
from services.moderation.trial import SAMPLE_EXAMPLE

Examples = dict[str, Any]

# a PNG of a QR code holding https://example.cn (what a qr_code rule decodes)
QR_PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAADoAAAA6AQAAAADJwHeFAAAA1klEQVR4nI2RscrDIBSFj9HlB4uBrh27"
    "FoRkLJhH7Kv0AQqWrgnJ+kP3roqOkdulkCt0qJN83HOO9ygIAIB7g8/5comi75VQjEjSz+ACH1Y4Ig6V"
    "PPuF+yigtDhVEavEajwjRcD293YjIEogIr/N5LzDJDJz1j3FQ3gyVYBMo3abCkmPpGfDSEh2PGvJiQ/d"
    "I82M0MN4eObTwF71LBeWHgfgMrj6zWuXiDvDutTxLSSZPNxU1WH8L62tGjOvv/1StVomdRpZViKnCWyv"
    "poh4nBzrR/zwy29g3Fsmjwp/iAAAAABJRU5ErkJggg=="
)

CREATE_EXAMPLES: Examples = {
    kind: {"summary": f"A {kind} rule", "value": example_rule(kind)} for kind in RULE_KINDS
}

UPDATE_EXAMPLES: Examples = {
    "shadow": {"summary": "Try the rule in shadow mode", "value": {"mode": "shadow"}},
    "disable": {"summary": "Pause the rule", "value": {"enabled": False}},
    "keep": {
        "summary": "Keep the messages it judges (strikes only)",
        "value": {"delete_message": False},
    },
    "params": {
        "summary": "Replace the params (they must fit the stored kind)",
        "value": {"params": PARAMS["keywords"].EXAMPLE},
    },
    "kind": {
        "summary": "Make it a flood rule that mutes",
        "value": {
            "kind": "flood",
            "params": PARAMS["flood"].EXAMPLE,
            "action": "mute",
            "mute_seconds": 600,
        },
    },
}

POLICY_EXAMPLES: Examples = {
    "ladder": {"summary": "Mute at 2 strikes, kick at 3", "value": POLICY_EXAMPLE},
    "none": {"summary": "No escalation", "value": {"strike_window_days": 30, "ladder": []}},
    "reports": {
        "summary": "Three members' reports (举报) delete a message",
        "value": {
            "exempt_members": ["telegram:10001"],
            "reports": {"keywords": ["举报", "/report"], "threshold": 3, "action": "delete"},
        },
    },
    "gates": {
        "summary": "Join requests by keyword, newcomers verified by a code (入群验证)",
        "value": {
            "exempt_members": ["telegram:10001"],
            "join_requests": {"mode": "auto", "answer_keywords": ["运营", "暗号"]},
            "verification": {"enabled": True, "within_seconds": 300, "on_fail": "kick"},
            "notices": {"verify": "{member} 请在 {duration} 内发送验证码 {code}"},
        },
    },
}

SAMPLE_EXAMPLES: Examples = {
    "message": {"summary": "A message with spaced-out keywords", "value": SAMPLE_EXAMPLE},
    "link": {
        "summary": "A newcomer's message with a link",
        "value": {
            "member_id": "telegram:987654321",
            "text": "福利看这里 example.cn/x",
            "joined_at": "2026-11-20T08:00:00+08:00",
        },
    },
    "join": {
        "summary": "A join whose display name is checked",
        "value": {
            "type": "member.joined",
            "member_id": "telegram:987654321",
            "display_name": "加微信 abc123",
        },
    },
    "qr_code": {
        "summary": "An image holding a QR code (base64 `data`)",
        "value": {"kind": "image", "attachments": [{"kind": "image", "data": QR_PNG_BASE64}]},
    },
}
