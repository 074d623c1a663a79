"""Provider kinds, admin-managed provider records, keys and connection tests."""
