"""The reference HERMES target: an OpenAI-compatible app with a cache, a rate limiter and sessions."""
