"""Fake provider servers for tests: real HTTP on 127.0.0.1, the providers' wire formats.

* :class:`FakeServer` runs any ASGI app under uvicorn in a thread (``with FakeServer(app)``).
* :class:`FakeProvider` and its subclasses (:class:`FakeOpenAI`, :class:`FakeGroq`,
  :class:`FakeHuggingFace`, :class:`FakeAnthropic`, :class:`FakeGemini`,
  :class:`FakeCustom`) hold the state (valid keys, models, delay, forced status, received
  requests) and build the app; ``with FakeOpenAI(keys={...}) as fake`` serves one.
* :mod:`tests.fakes.fixtures` has pytest fixtures serving each, with their keys.
"""

from tests.fakes.providers import (
    FakeAnthropic,
    FakeCustom,
    FakeGemini,
    FakeGroq,
    FakeHuggingFace,
    FakeOpenAI,
    FakeProvider,
    RecordedRequest,
)
from tests.fakes.server import FakeServer, closed_port

__all__ = [
    "FakeAnthropic",
    "FakeCustom",
    "FakeGemini",
    "FakeGroq",
    "FakeHuggingFace",
    "FakeOpenAI",
    "FakeProvider",
    "FakeServer",
    "RecordedRequest",
    "closed_port",
]
