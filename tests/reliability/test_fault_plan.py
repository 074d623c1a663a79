"""The faulty fake's plan: exact shares per block, the same fault for the same request
number on every run, and the faults it serves on the wire."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.fakes.faulty import FAULTS, FaultPlan, FaultyOpenAI

KEY = "sk-faulty-plan-0123456789"


def test_the_shares_are_exact_per_block_and_the_order_is_seeded() -> None:
    plan = FaultPlan(seed=7)
    for block in range(50):
        faults = Counter(plan.fault(n) for n in range(block * 20 + 1, block * 20 + 21))
        assert faults == {"ok": 15, "rate_limited": 2, "unavailable": 2, "slow": 1}
    assert [plan.fault(n) for n in range(1, 201)] == [
        FaultPlan(seed=7).fault(n) for n in range(1, 201)
    ]
    assert [plan.fault(n) for n in range(1, 201)] != [
        FaultPlan(seed=8).fault(n) for n in range(1, 201)
    ]
    assert sum(plan.share(fault) for fault in FAULTS) == 1
    assert plan.share("rate_limited") == 0.1 and plan.share("slow") == 0.05


def test_impossible_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="more faults than requests"):
        FaultPlan(block=4, rate_limited=2, unavailable=2, slow=1)
    with pytest.raises(ValueError, match="numbered from 1"):
        FaultPlan().fault(0)


def test_the_fake_answers_each_request_with_its_planned_fault() -> None:
    plan = FaultPlan(seed=3)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with FaultyOpenAI(plan=plan, slow_seconds=0.3, retry_after=7, keys={KEY}) as fake:
        with httpx.Client(
            base_url=fake.base_url, headers={"authorization": f"Bearer {KEY}"}
        ) as http:
            for n in range(1, 41):
                response = http.post("/chat/completions", json=body)
                expected = plan.fault(n)
                if expected == "rate_limited":
                    assert response.status_code == 429
                    assert response.headers["retry-after"] == "7"
                    assert response.json()["error"]["code"] == "rate_limit_exceeded"
                elif expected == "unavailable":
                    assert response.status_code == 503
                else:
                    assert response.status_code == 200
                    assert response.json()["choices"][0]["message"]["content"] == "Echo: hi"
                    if expected == "slow":
                        assert response.elapsed.total_seconds() >= 0.3
        assert fake.chats == 40
        assert fake.served == Counter(plan.fault(n) for n in range(1, 41))
