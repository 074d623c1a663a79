"""The HTTP side of a metered stream: a streaming response that always closes its chunks.

The bookkeeping itself is :mod:`modelyard.usage.metering`'s; this response only makes sure
its :class:`~modelyard.usage.metering.MeteredChunks` are closed, so their end is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from modelyard.usage.metering import MeteredChunks

__all__ = ["MeteredStream"]


class MeteredStream(StreamingResponse):
    """A streamed answer whose end is always recorded.

    When the client goes away (or presses Stop), Starlette cancels the stream wherever it
    waits — possibly before the body was ever started, so no ``finally`` of the body would
    run. This response closes its body and then ``chunks`` (which records the end and runs
    its closers), shielded from the cancellation, once it is done, however it ended.
    """

    def __init__(self, content: AsyncIterator[Any], *, chunks: MeteredChunks, **kwargs: Any):
        super().__init__(content, **kwargs)
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                closer = getattr(self.body_iterator, "aclose", None)
                if closer is not None:
                    await closer()
                await self.chunks.aclose()
