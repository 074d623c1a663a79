"""Secrets never reach the logs: canaries through a message, an argument and an exception."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from modelyard.logs import configure_logging
from modelyard.security.redaction import MASK, SecretRegistry, redact, secret_registry

CANARIES = {
    "openai": "sk-proj-CANARY0123456789abcdefghij",
    "anthropic": "sk-ant-api03-CANARY0123456789abcdef",
    "huggingface": "hf_CANARYabcdefghijklmnopqrstuv",
    "groq": "gsk_CANARY0123456789abcdefghijkl",
    "google": "AIzaSyCANARY0123456789abcdefghijklmnop",
    "modelyard": "myd_CANARY0123456789abcdefghijkl",
}


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "text")
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize("kind", sorted(CANARIES))
def test_key_in_message_argument_and_exception_is_masked(
    kind: str, log_stream: io.StringIO
) -> None:
    canary = CANARIES[kind]
    logger = logging.getLogger("modelyard.test")
    logger.info(f"calling upstream with key {canary}")
    logger.warning("retrying with %s", canary)
    try:
        raise RuntimeError(f"upstream refused key {canary}")
    except RuntimeError:
        logger.exception("request failed")
    output = log_stream.getvalue()
    assert "calling upstream with key" in output and "retrying with" in output
    assert "RuntimeError: upstream refused key" in output  # the traceback is kept
    assert canary not in output
    assert canary[4:] not in output  # no tail of it either
    assert output.count(MASK) >= 3


def test_json_logs_are_masked_too(log_stream: io.StringIO) -> None:
    configure_logging("INFO", "json").setStream(log_stream)  # type: ignore[attr-defined]
    try:
        raise ValueError(f"bad key {CANARIES['groq']}")
    except ValueError:
        logging.getLogger("x").exception("failed with %s", CANARIES["openai"])
    output = log_stream.getvalue()
    assert '"level":"ERROR"' in output and '"exception":' in output
    assert all(canary not in output for canary in CANARIES.values())


def test_authorization_headers_and_bearer_tokens_are_masked() -> None:
    text = (
        "headers={'Authorization': 'Bearer abc.def-ghi_jkl123'} "
        "x-api-key: plainsecretvalue99 then Bearer zzzyyyxxxwww111"
    )
    masked = redact(text)
    for secret in ("abc.def-ghi_jkl123", "plainsecretvalue99", "zzzyyyxxxwww111"):
        assert secret not in masked


def test_registered_secret_without_a_known_shape_is_masked(log_stream: io.StringIO) -> None:
    secret_registry.add("custom-provider-secret-42")
    try:
        logging.getLogger("x").error("custom key custom-provider-secret-42 rejected")
    finally:
        secret_registry.clear()
    assert "custom-provider-secret-42" not in log_stream.getvalue()


def test_registry_is_independent_and_resettable() -> None:
    registry = SecretRegistry()
    registry.add("tiny")  # too short to mask safely
    registry.add("longer-secret")
    assert registry.mask("tiny longer-secret") == f"tiny {MASK}"
    registry.clear()
    assert registry.mask("longer-secret") == "longer-secret"


def test_bad_format_string_keeps_the_record(log_stream: io.StringIO) -> None:
    logging.getLogger("x").error("two %s %s", CANARIES["openai"])
    output = log_stream.getvalue()
    assert "two" in output and CANARIES["openai"] not in output
