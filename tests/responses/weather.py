"""The function tool the Responses API tests give the model."""

from __future__ import annotations

from openai.types.responses import FunctionToolParam

__all__ = ["WEATHER"]

WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": True,
}
