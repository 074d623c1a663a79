"""Inbound APIs other than OpenAI's: what a client speaks to us, translated to and from
the gateway's canonical (OpenAI) format in :mod:`modelyard.gateway.schemas`.

* :mod:`.anthropic_messages`: Anthropic's Messages API (``POST /v1/messages``).
"""
