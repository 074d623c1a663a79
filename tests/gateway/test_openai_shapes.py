"""The one builder of OpenAI-shaped answers that the translating adapters share."""

from __future__ import annotations

from modelyard.gateway.adapters import openai_shapes


def test_usage_adds_details_only_when_given() -> None:
    assert openai_shapes.usage(3, 4) == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
    }
    counts = openai_shapes.usage(3, 4, total=9, cached=0, reasoning=2)
    assert counts["total_tokens"] == 9
    assert counts["prompt_tokens_details"] == {"cached_tokens": 0}
    assert counts["completion_tokens_details"] == {"reasoning_tokens": 2}


def test_completion_has_one_choice_and_no_empty_tool_calls() -> None:
    answer = openai_shapes.completion(
        id=openai_shapes.completion_id("abc"),
        model="m",
        message=openai_shapes.assistant_message("Hi", []),
        finish_reason="stop",
        usage=openai_shapes.usage(1, 1),
    )
    assert answer["id"] == "chatcmpl-abc"
    assert answer["object"] == "chat.completion"
    assert isinstance(answer["created"], int)
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    call = openai_shapes.tool_call("call_0", "f", "{}")
    message = openai_shapes.assistant_message(None, [call])
    assert message["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]


def test_chunks_read_an_id_learnt_late_and_end_with_usage() -> None:
    envelope = openai_shapes.ChunkEnvelope(id="", model="m")
    envelope.id, envelope.model = "chatcmpl-x", "m-2024"
    first = envelope.chunk({"role": "assistant", "content": ""})
    last = envelope.chunk({}, "length")
    closing = envelope.usage_chunk(openai_shapes.usage(2, 5))
    for chunk in (first, last, closing):
        assert chunk["id"] == "chatcmpl-x"
        assert chunk["model"] == "m-2024"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == envelope.created
    assert last["choices"] == [
        {"index": 0, "delta": {}, "finish_reason": "length", "logprobs": None}
    ]
    assert closing["choices"] == []
    assert closing["usage"]["total_tokens"] == 7
    assert openai_shapes.completion_id() != openai_shapes.completion_id()


def test_embedding_list_numbers_the_inputs() -> None:
    answer = openai_shapes.embedding_list([[0.5], "AAAAPw=="], model="e", prompt_tokens=4)
    assert answer == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5]},
            {"object": "embedding", "index": 1, "embedding": "AAAAPw=="},
        ],
        "model": "e",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
