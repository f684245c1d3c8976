"""Talking to Hello Retail: HTTP transports, the mint and its circuit breaker, prefetching, per-process resources."""
