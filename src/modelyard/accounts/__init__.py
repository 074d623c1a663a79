"""Accounts: users, personal API tokens and web sessions (keyword-only data functions)."""
