"""Budgets and rate limits per user and per API token, enforced before the upstream call."""
