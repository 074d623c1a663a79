"""One chat turn of the web app: the conversation it belongs to and how it is stored.

The flow around a gateway call, the same for every route that keeps a turn (``/v2/llm``
and the web chat's, see ``api/chat_completion.py``):

1. :meth:`ChatTurn.begin` checks the ``conversation_id`` (another user's or an unknown
   id is a 404, before anything is called upstream), or creates a new conversation in
   its own short transaction, so its id is known before the call;
2. :meth:`ChatTurn.store` is the gateway's ``on_complete`` hook: called once the answer
   is complete, it stores the new user message and the answer together, in one
   transaction. It is also called when the client left or pressed Stop during a streamed
   answer: the question is stored with what had arrived of the answer (maybe nothing),
   marked ``status="stopped"``, with its tokens and cost — as ChatGPT and Open WebUI
   keep a stopped answer;
3. :meth:`ChatTurn.abandon` runs when the turn ends without being stored (upstream
   failure, refused by the limits, a stream the upstream cut midway): a conversation
   created by this turn that still has no message is deleted again. An existing
   conversation is left as it was, so a failed turn leaves nothing half-written: the
   client still has its message and simply sends it again.

:meth:`ChatTurn.answer` runs a metered call that way: it abandons the turn when the call
fails, and once a streamed answer is closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import anyio
from sqlalchemy.exc import SQLAlchemyError

from modelyard.conversations.attachments import expand_messages, names_attachments
from modelyard.conversations.service import (
    TurnMessage,
    add_turn,
    create_conversation,
    derive_title,
    discard_if_empty,
    extend_answer,
    get_conversation,
    message_text,
)
from modelyard.conversations.settings import TurnSettings, turn_settings
from modelyard.db.engine import Database
from modelyard.db.types import utcnow
from modelyard.errors import InternalServerError, ModelyardError
from modelyard.gateway.schemas import ChatCompletionRequest, ChatMessage
from modelyard.gateway.sse import encode_event
from modelyard.model_list.vision import model_takes_images
from modelyard.usage.completion import Completion
from modelyard.usage.metering import MeteredChunks

__all__ = ["STOPPED", "ChatTurn", "last_user_text"]

logger = logging.getLogger("modelyard.conversations")

Chunk = str | bytes | memoryview

#: ``ConversationMessage.status`` of an answer cut by the client (``None``: complete).
STOPPED = "stopped"


def last_user_text(messages: Sequence[ChatMessage]) -> str | None:
    """The text of the request's last user message (the new one), if it has one."""
    for message in reversed(messages):
        if message.role == "user":
            return message_text(message.content)
    return None


def _first_user_text(messages: Sequence[ChatMessage]) -> str:
    return next((message_text(m.content) for m in messages if m.role == "user"), "")


class ChatTurn:
    """A user message on its way to the gateway, and the conversation it goes into."""

    def __init__(
        self,
        database: Database,
        *,
        user_id: int,
        conversation_id: int,
        created: bool,
        question: str | None,
    ) -> None:
        self.database = database
        self.user_id = user_id
        self.conversation_id = conversation_id
        #: Whether this turn created the conversation (it is removed again on failure).
        self.created = created
        self.question = question
        self.asked_at = utcnow()
        self.stored = False
        #: Set to make this turn a new version of that user message (regenerate, edit and
        #: resend): the earlier versions are kept (:mod:`.versions`).
        self.replace_from: int | None = None
        #: Set to append this turn's answer to that stopped answer (Continue).
        self.continues: int | None = None
        #: What the conversation and the user's custom instructions add to the request.
        self.settings = TurnSettings()
        #: The attachments of the new user message (linked to it when it is stored).
        self.attachment_ids: list[int] = []

    @classmethod
    async def begin(
        cls,
        database: Database,
        *,
        user_id: int,
        conversation_id: int | None,
        messages: Sequence[ChatMessage],
    ) -> ChatTurn:
        """Check the conversation (404 when it is not the user's) or start a new one."""
        async with database.sessions() as session:
            if conversation_id is not None:
                conversation = await get_conversation(
                    session, user_id=user_id, conversation_id=conversation_id
                )
                settings = await turn_settings(session, user_id=user_id, conversation=conversation)
                created = False
            else:
                settings = await turn_settings(session, user_id=user_id, conversation=None)
                title = derive_title(_first_user_text(messages))
                conversation = await create_conversation(session, user_id=user_id, title=title)
                conversation_id, created = conversation.id, True
        turn = cls(
            database,
            user_id=user_id,
            conversation_id=conversation_id,
            created=created,
            question=last_user_text(messages),
        )
        turn.settings = settings
        return turn

    async def prepare(self, body: ChatCompletionRequest) -> ChatCompletionRequest:
        """The request as the gateway gets it: the conversation's settings applied and the
        attachments as content parts (:mod:`.attachments`). A refused attachment (an
        image for a model that takes none among them) abandons the turn."""
        if names_attachments(body.messages):
            try:
                async with self.database.sessions() as session:
                    vision = await model_takes_images(session, body.model)
                    messages, self.attachment_ids = await expand_messages(
                        session,
                        user_id=self.user_id,
                        messages=body.messages,
                        no_images_for=None if vision else body.model,
                    )
            except BaseException:
                await self.abandon()
                raise
            body = body.model_copy(update={"messages": messages})
        return self.settings.apply(body)

    async def answer(
        self, answering: Callable[[], Awaitable[dict[str, Any] | MeteredChunks]]
    ) -> dict[str, Any] | MeteredChunks:
        """The answer from ``answering`` (a metered call whose ``on_complete`` is
        :meth:`store`): a failure abandons the turn at once; a streamed answer abandons it,
        if it is still not stored, once the stream is closed."""
        try:
            answer = await answering()
        except BaseException:
            await self.abandon()
            raise
        if isinstance(answer, MeteredChunks):
            answer.closers.append(self.abandon)
        return answer

    async def store(self, completion: Completion) -> None:
        """Store the user message and the answer together (the ``on_complete`` hook).

        The user message carries the turn's input tokens, the answer its output tokens,
        the turn's cost and latency; so a conversation's totals are plain sums.
        """
        question = None
        if self.question is not None:
            question = TurnMessage(
                self.question,
                completion.model,
                input_tokens=completion.input_tokens,
                created_at=self.asked_at,
            )
        answer = TurnMessage(
            completion.content,
            completion.model,
            output_tokens=completion.output_tokens,
            cost_usd=completion.cost_usd,
            latency_ms=completion.latency_ms,
            status=STOPPED if completion.stopped else None,
        )
        try:
            async with self.database.sessions() as session:
                if self.continues is not None:
                    self.stored = await extend_answer(
                        session,
                        user_id=self.user_id,
                        conversation_id=self.conversation_id,
                        message_id=self.continues,
                        more=replace(answer, input_tokens=completion.input_tokens),
                    )
                else:
                    self.stored = await add_turn(
                        session,
                        user_id=self.user_id,
                        conversation_id=self.conversation_id,
                        question=question,
                        answer=answer,
                        version_of=self.replace_from,
                        attachment_ids=self.attachment_ids,
                    )
        except SQLAlchemyError as error:
            logger.exception("Conversation %s: the turn could not be saved", self.conversation_id)
            raise InternalServerError(
                "The answer could not be saved to the conversation; send the message again.",
                code="conversation_not_saved",
            ) from error
        if not self.stored:
            logger.info("Conversation %s was deleted during the turn", self.conversation_id)

    async def abandon(self) -> None:
        """After a turn that stored nothing: remove the conversation it created, if empty.

        (Usage records name conversations without a foreign key, so a queued record of
        this turn never stops the deletion, nor the deletion the record.)
        """
        if self.stored or not self.created:
            return
        # Also runs while the request is being cancelled (the client left).
        with anyio.CancelScope(shield=True):
            try:
                async with self.database.sessions() as session:
                    await discard_if_empty(session, conversation_id=self.conversation_id)
            except SQLAlchemyError:
                logger.exception("Conversation %s: could not remove it", self.conversation_id)

    async def guard(self, body: AsyncIterable[Chunk]) -> AsyncIterator[Chunk]:
        """A streamed answer's body: a turn that could not be saved ends it with an error
        event. (The response abandons the turn once the stream is over.)"""
        try:
            async for chunk in body:
                yield chunk
        except ModelyardError as error:
            yield encode_event(error.body())
        finally:
            closer = getattr(body, "aclose", None)
            if closer is not None:
                await closer()
