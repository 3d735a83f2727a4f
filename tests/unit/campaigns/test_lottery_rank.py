"""The verifiable draw's pure part (hmac-sha256-rank-v1): seeds and the ranking."""

from __future__ import annotations

import hashlib
import hmac

from services.campaigns.lottery import new_seed, rank

SEED = "00" * 31 + "01"


def test_new_seed_commits_to_its_bytes():
    seed, digest = new_seed()
    assert len(bytes.fromhex(seed)) == 32
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == digest
    assert new_seed()[0] != seed


def test_rank_orders_by_hmac_of_the_member_id():
    members = [f"slack:T1:U{i}" for i in range(50)] + ["成员甲", "member-β"]
    key = bytes.fromhex(SEED)

    def score(m: str) -> bytes:
        return hmac.new(key, m.encode("utf-8"), hashlib.sha256).digest()

    assert rank(SEED, members) == sorted(members, key=score)


def test_rank_is_a_permutation_independent_of_the_input_order():
    members = [f"m{i}" for i in range(100)]
    ranked = rank(SEED, members)
    assert sorted(ranked) == sorted(members)
    assert rank(SEED, list(reversed(members))) == ranked


def test_rank_depends_on_the_seed():
    members = [f"m{i}" for i in range(100)]
    assert rank(SEED, members) != rank("ff" * 32, members)


def test_rank_of_nobody_is_empty():
    assert rank(SEED, []) == []
