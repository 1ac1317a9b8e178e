"""What an API key may be, for the app that reads one and the harness that sends one."""

from __future__ import annotations

# Real keys are under 200 characters (OpenAI's project keys about 164); a longer one is not a
# key, and each key's hash is taken per request, so its length bounds work and memory.
MAX_API_KEY_CHARS = 512


def api_key_problem(key: str) -> str | None:
    """Why `key` cannot be an API key (never quoting it: messages reach logs), or None."""
    if not key:
        return "an empty key"
    if len(key) > MAX_API_KEY_CHARS:
        return f"a key of {len(key)} characters: keys have at most {MAX_API_KEY_CHARS}"
    if not key.isascii() or not key.isprintable() or " " in key:
        return "a key with a space, a control or a non-ASCII character"
    return None
