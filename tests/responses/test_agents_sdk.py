"""The OpenAI Agents SDK's default model (``OpenAIResponsesModel``) against the gateway: an
agent calls a function tool, gets its result and answers, through ``/v1/responses``."""

from __future__ import annotations

import openai
import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool

from tests.responses.tooling_openai import ToolingOpenAI

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLS.append(city)
    return f"Sunny in {city}"


@pytest.fixture(autouse=True)
def no_calls() -> None:
    CALLS.clear()


def weather_agent(sdk: openai.AsyncOpenAI) -> Agent:
    return Agent(
        name="weather",
        instructions="Answer with the weather.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="openai_compatible/gpt-4o-mini", openai_client=sdk),
    )


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_agent_calls_a_tool_then_answers(
    sdk: openai.AsyncOpenAI, upstream: ToolingOpenAI, streamed: bool
) -> None:
    agent = weather_agent(sdk)
    config = RunConfig(tracing_disabled=True)
    question = "What is the weather in Paris?"
    if streamed:
        run = Runner.run_streamed(agent, question, run_config=config)
        kinds = [event.type async for event in run.stream_events()]
        assert "raw_response_event" in kinds
        output = run.final_output
    else:
        output = (await Runner.run(agent, question, run_config=config)).final_output
    assert CALLS == ["Paris"]
    assert output == "The tool said: Sunny in Paris"
    first, second = (request.json() for request in upstream.requests[-2:])
    assert first["stream"] is second["stream"] is streamed
    assert first["messages"][0] == {"role": "system", "content": "Answer with the weather."}
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert [message["role"] for message in second["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]
    assert second["messages"][-1]["content"] == "Sunny in Paris"
