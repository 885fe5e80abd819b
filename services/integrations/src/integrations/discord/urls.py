"""Which URLs are Discord channel webhooks.

Accepted: https://discord.com/api[/v<n>]/webhooks/<id>/<token> (also discordapp.com and the
ptb./canary. hosts), and the same path under `settings.discord_base_url` (a stand-in server
in tests, or a proxy) — that base is operator configuration and trusted.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..settings import IntegrationsSettings

DISCORD_HOSTS = frozenset({"discord.com", "discordapp.com", "ptb.discord.com",
                           "canary.discord.com", "ptb.discordapp.com", "canary.discordapp.com"})
_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d{1,25})/([A-Za-z0-9_\-]{1,100})/?$")


class NotDiscord(ValueError):
    """Not a Discord webhook URL (message is user-facing)."""


def _under_base(url: str, settings: IntegrationsSettings) -> str | None:
    """The path of `url` below the configured base URL, or None."""
    base = (settings.discord_base_url or "").rstrip("/")
    if base and url.startswith(base + "/"):
        return url[len(base):]
    return None


def is_trusted(url: str, settings: IntegrationsSettings) -> bool:
    return _under_base(url, settings) is not None


def validate(url: str, settings: IntegrationsSettings) -> str:
    """`url` (trimmed, without a query) when it is a Discord webhook URL; else NotDiscord."""
    url = (url or "").strip()
    rest = _under_base(url, settings)
    if rest is None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise NotDiscord("must be a Discord webhook URL") from None
        if parts.scheme != "https" or (parts.hostname or "").lower() not in DISCORD_HOSTS \
                or parts.username or parts.password or parts.port not in (None, 443):
            raise NotDiscord("must be a Discord webhook URL "
                             "(https://discord.com/api/webhooks/<id>/<token>)")
        rest = parts.path
        url = f"https://{(parts.hostname or '').lower()}{parts.path}"
    else:
        rest = rest.split("?", 1)[0]
        url = url.split("?", 1)[0]
    if not _PATH.match(rest):
        raise NotDiscord("must be a Discord webhook URL (…/api/webhooks/<id>/<token>)")
    return url.rstrip("/")


def hint(url: str) -> str:
    """The URL with all but the last four characters of its token masked."""
    head, _, token = url.rstrip("/").rpartition("/")
    return f"{head}/…{token[-4:]}" if len(token) > 4 else f"{head}/…"
