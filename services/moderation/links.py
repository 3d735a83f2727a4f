"""Find URLs and bare domains in a clean (NFKC, case-folded) text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

# Bare domains need a known top-level domain, so `file.txt` or `e.g` are not links.
_TLDS = (
    "com|cn|net|org|io|me|cc|co|xyz|top|vip|info|biz|app|dev|link|ly|gl|tk|ru|jp|hk|tw|mo|"
    "uk|us|de|fr|sg|kr|site|online|shop|store|club|ai|tv|so|la|ink|pro|fun|icu|work|live|"
    "cloud|tech|wang|ren|xin|mobi|asia|gg|im|to|ws|in|one|world|life|group|team|email|"
    "page|plus|zone|today|news|red|run|love|win|bid|ltd|cyou|cfd|sbs|buzz|gov|edu"
)
_LINK = re.compile(
    r"(?:https?|ftp)://[^\s<>\"'，。！？、）)]+"
    r"|(?<![a-z0-9.@_-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _TLDS + r")"
    r"(?![a-z0-9-])(?::\d{1,5})?(?:[/?#][^\s<>\"'，。！？、）)]*)?"
)
# An ideographic full stop between Latin labels is a dot in disguise (`abc。com`).
_IDEOGRAPHIC_DOT = re.compile(r"(?<=[a-z0-9])[。｡](?=[a-z])")


def may_hold_link(clean: str) -> bool:
    """Tell cheaply whether the text can hold a link at all (a dot, or a disguised one)."""
    if "." in clean:
        return True
    return ("。" in clean or "｡" in clean) and _IDEOGRAPHIC_DOT.search(clean) is not None


def find_links(clean: str) -> list[tuple[str, str]]:
    """Return each link in the text as (link, host)."""
    if "。" in clean or "｡" in clean:
        clean = _IDEOGRAPHIC_DOT.sub(".", clean)
    found = []
    for match in _LINK.finditer(clean):
        link = match.group(0)
        if "://" in link:
            try:
                host = urlsplit(link).hostname or ""
            except ValueError:
                host = ""
        else:
            host = re.split(r"[:/?#]", link, maxsplit=1)[0]
        found.append((link, host.strip(".")))
    return found


def is_allowed(host: str, allowed_domains: Iterable[str]) -> bool:
    """Tell whether the host is one of the domains or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in allowed_domains)
