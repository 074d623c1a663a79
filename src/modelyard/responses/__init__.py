"""Stored Responses API answers (``store``), kept per user for ``previous_response_id``."""
