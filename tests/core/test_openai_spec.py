"""The OpenAI spec validator the API tests use finds what is wrong, and accepts what is right."""

from __future__ import annotations

from tests.openai_spec import assert_valid, assert_valid_stream_event, spec_errors

CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "hi", "refusal": None},
        }
    ],
}


def test_a_complete_answer_is_valid_and_a_missing_required_field_is_named() -> None:
    assert_valid("CreateChatCompletionResponse", CHAT_ANSWER)
    message = {"role": "assistant", "content": "hi"}
    broken = {**CHAT_ANSWER, "choices": [{"index": 0, "message": message}]}
    errors = spec_errors("CreateChatCompletionResponse", broken)
    assert any('"refusal" is a required property' in error for error in errors)
    assert any('"finish_reason" is a required property' in error for error in errors)


def test_nullable_fields_accept_null_and_nothing_else_of_the_wrong_type() -> None:
    assert not spec_errors("CreateChatCompletionResponse", CHAT_ANSWER)  # logprobs: null
    wrong = {**CHAT_ANSWER, "choices": [{**CHAT_ANSWER["choices"][0], "logprobs": 3}]}
    assert spec_errors("CreateChatCompletionResponse", wrong)


def test_stream_events_are_checked_against_the_schema_of_their_type() -> None:
    event = {
        "type": "response.output_text.delta",
        "delta": "x",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "sequence_number": 1,
        "logprobs": [],
    }
    assert_valid_stream_event(event)
    try:
        assert_valid_stream_event({"type": "response.output_text.delta", "delta": "x"})
    except AssertionError as error:
        assert "item_id" in str(error)
    else:
        raise AssertionError("an event without item_id passed")
