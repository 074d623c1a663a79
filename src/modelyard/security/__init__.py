"""Encryption at rest, password hashing, API tokens and log redaction."""
