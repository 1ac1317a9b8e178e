"""Redaction of secrets (passwords in URLs, API keys) before anything is logged or written."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"

# userinfo in any scheme://user:pass@host URL inside free text
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^@/\s]+)@")
# OpenAI-style keys and bearer tokens inside free text
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{4,})")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{4,}")


def redact_url(url: str) -> str:
    """Return `url` with any password (and token-like user name) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    userinfo = f"{user}:{REDACTED}" if parts.password is not None else REDACTED
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """Redact URL passwords, bearer tokens and sk- keys anywhere in free text."""

    def _userinfo(match: re.Match[str]) -> str:
        userinfo = match.group("userinfo")
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        return f"{match.group('scheme')}{user}:{REDACTED}@"

    text = _URL_USERINFO.sub(_userinfo, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _SK_KEY.sub("sk-" + REDACTED, text)


def redact_key(key: str) -> str:
    """Show an API key as a short, non-reversible label: its first 4 characters and ***."""
    return key[:4] + REDACTED if len(key) > 8 else REDACTED
