"""Reading a raw Responses event stream in tests, every event checked against the spec."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.helpers import bearer
from tests.openai_spec import assert_valid_stream_event

__all__ = ["OPENING_EVENTS", "stream_events"]

#: The first events of a Responses stream with a message, in order.
OPENING_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]


async def stream_events(http: httpx.AsyncClient, token: str, **body: Any) -> list[dict[str, Any]]:
    """The events of ``POST /v1/responses`` with ``stream``: each frame's ``event:`` names its
    data's ``type``, every event is a valid stream event, numbered from 0 without gaps."""
    response = await http.post(
        "/v1/responses", headers=bearer(token), json={"stream": True, **body}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for frame in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        assert_valid_stream_event(data)
        events.append(data)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events
