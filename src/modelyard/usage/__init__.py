"""Usage and cost accounting: one record per gateway request, written in batches."""
