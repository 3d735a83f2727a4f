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


# Whether there is one: the same test, but led by the dot so `re` only stops at dots.
_HAS_IDEOGRAPHIC_DOT = re.compile(r"[。｡](?<=[a-z0-9][。｡])(?=[a-z])").search


def may_hold_link(clean: str) -> bool:
    """Tell cheaply whether the text can hold a link at all (a dot, or a disguised one)."""
    if "." in clean:
        return True
    return ("。" in clean or "｡" in clean) and _HAS_IDEOGRAPHIC_DOT(clean) is not None


def find_links(clean: str) -> list[tuple[str, str]]:
    """Return each link in the text as (link, host)."""
    if "。" in clean or "｡" in clean:
        clean = _IDEOGRAPHIC_DOT.sub(".", clean)
    found = []
    for match in _LINK.finditer(clean):
        link = match.group(0)
        host = _url_host(link) if "://" in link else _HOST_END.split(link, maxsplit=1)[0]
        found.append((link, host.strip(".")))
    return found


_HOST_END = re.compile(r"[:/?#]")


def _url_host(link: str) -> str:
    """Return urlsplit(link).hostname or "" ("" also where urlsplit raises ValueError).

    The common case, an ASCII network location without IPv6 brackets, is read here
    exactly as urlsplit reads it (urlsplit itself costs ~2 µs, a third of a link
    message); anything else goes to urlsplit.
    """
    start = link.find("://") + 3
    end = len(link)
    for stop in "/?#":  # urllib.parse._splitnetloc
        index = link.find(stop, start)
        if 0 <= index < end:
            end = index
    netloc = link[start:end]
    if netloc.isascii() and "[" not in netloc and "]" not in netloc:
        hostname = netloc.rpartition("@")[2].partition(":")[0]
        name, percent, zone = hostname.partition("%")
        return name.lower() + percent + zone
    try:
        return urlsplit(link).hostname or ""
    except ValueError:
        return ""


def is_allowed(host: str, allowed_domains: Iterable[str]) -> bool:
    """Tell whether the host is one of the domains or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in allowed_domains)


class AllowedDomains:
    """is_allowed for one fixed list of domains, precomputed: a set and a suffix tuple."""

    __slots__ = ("_domains", "_suffixes")

    def __init__(self, allowed_domains: Iterable[str]) -> None:
        domains = list(allowed_domains)
        self._domains = frozenset(domains)
        self._suffixes = tuple("." + d for d in domains)

    def __call__(self, host: str) -> bool:
        return host in self._domains or host.endswith(self._suffixes)
