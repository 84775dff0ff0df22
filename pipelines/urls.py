"""URL canonicalisation and safety checks for crawl targets."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

logger = logging.getLogger(__name__)

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "ysclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "_ga",
        "_gl",
        "ref",
        "ref_src",
        "ref_url",
        "cmpid",
        "ocid",
        "smid",
        "sr_share",
        "at_medium",
        "at_campaign",
        "rss",
        "from",
        "spm",
        "share",
        "s_cid",
        "ito",
        "itm_source",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "itm_", "hmb_", "__twitter", "oly_")
ALLOWED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonicalize_url(url: str) -> str | None:
    """The canonical form used to remember a page: lower-case scheme and host, no default port,
    no fragment, no tracking parameters, sorted query, normalised percent-encoding.

    Returns None for anything that is not an absolute http(s) URL.
    """
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES or not parts.hostname:
        return None
    host = parts.hostname.rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = quote(unquote(parts.path), safe=_SAFE_PATH) or "/"
    path = re.sub(r"/{2,}", "/", path)
    query_items = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)
    ]
    query = urlencode(sorted(query_items), doseq=True)
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str) -> str | None:
    """The host name of a URL without a leading ``www.``, used as the outlet of a document."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+")


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host denotes without DNS, or None for a name.

    Besides the usual forms this reads the IPv4 forms resolvers accept (``2852039166``, ``0xa9fea9fe``,
    ``10.1``, octal ``0251.0376.0251.0376``): they reach the same addresses.
    """
    host = host.strip("[]").rstrip(".").lower()
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def blocked_address_reason(host: str, allow_loopback: bool = False) -> str | None:
    """Why a literal IP host must not be crawled (private, link-local, ...), or None if it may be.

    Host names are not resolved here; the address policy middleware checks the resolved address.
    """
    address = ip_literal(host)
    if address is None:
        if host.lower().rstrip(".") in {"localhost", "localhost.localdomain"} and not allow_loopback:
            return "loopback host"
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if allow_loopback else "loopback address"
    if address.is_link_local:
        return "link-local address"
    if (
        address.is_private
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global  # e.g. 100.64.0.0/10, shared by carrier-grade NAT
    ):
        return "private or reserved address"
    return None
