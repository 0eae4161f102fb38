"""Layer 5, serving many users: the bounded job pool, the real server for tests, the load test."""
