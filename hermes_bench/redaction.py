"""Redaction of secrets (passwords in URLs, API keys) before anything is logged or written."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REDACTED = "***"

# Query parameters that carry credentials: redis-py reads ?password= and ?username= from a URL.
_SECRET_PARAMS = (
    "password|passwd|pwd|pass|username|user|token|access_token|secret|api_key|apikey|auth"
)
# userinfo in any scheme://user:pass@host URL inside free text; greedy up to the last @ before
# the path, so a password with an unencoded @ is hidden whole.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s]*)@")
# A credential parameter in a URL's query, in free text or in a query string alone.
_QUERY_SECRET = re.compile(rf"(?i)(?P<lead>^|[?&;])(?P<name>{_SECRET_PARAMS})=(?P<value>[^&;#\s]*)")
# OpenAI-style keys and bearer tokens inside free text
_BEARER = re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{4,})")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{4,}")


def _redact_userinfo(userinfo: str) -> str:
    """`user:***` when a password is given, else `***` (a lone user name may be a token)."""
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{REDACTED}" if colon else REDACTED


def _redact_query(query: str) -> str:
    return _QUERY_SECRET.sub(lambda m: f"{m['lead']}{m['name']}={REDACTED}", query)


def redact_url(url: str) -> str:
    """Return `url` with its password, token-like user name and credential parameters as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return redact_text(url)
    # From the raw netloc, not parts.hostname/port: those drop IPv6 brackets and raise on a
    # port out of range, and a URL that cannot be used must still be safe to print.
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{_redact_userinfo(userinfo)}@{hostport}" if at else parts.netloc
    query = _redact_query(parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    # Joined by hand: urlunsplit drops the // of unix:///path when the netloc is empty.
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    has_authority = url.strip()[len(scheme) :].startswith("//")
    joined = scheme + (f"//{netloc}" if has_authority else "") + parts.path
    joined += f"?{query}" if query else ""
    return joined + (f"#{parts.fragment}" if parts.fragment else "")


def redact_text(text: str) -> str:
    """Redact URL passwords and credential parameters, bearer tokens and sk- keys in free text."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{_redact_userinfo(m['userinfo'])}@", text)
    text = _redact_query(text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _SK_KEY.sub("sk-" + REDACTED, text)
