"""The reference HERMES target: an OpenAI-compatible app with cache, rate limiter and sessions."""
