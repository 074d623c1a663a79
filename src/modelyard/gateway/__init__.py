"""The gateway: one OpenAI-compatible API in front of many providers.

A request flows: route → auth → :mod:`~modelyard.gateway.targets` (model → provider kind,
upstream model, credentials) → :mod:`~modelyard.gateway.dispatch` (tries each candidate
in turn) → an adapter from :mod:`~modelyard.gateway.adapters` speaks the wire format →
the response (or stream) goes back in the OpenAI shape.
"""
