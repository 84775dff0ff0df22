"""Article text and metadata from an HTML page (trafilatura), plus decoding and non-HTML sniffing.

Extraction options were chosen on the article-extraction-benchmark (181 pages, its own metric, see
``pipelines.extraction_metric`` and ``scripts/bench_extract.py``), trafilatura 2.3.1:

====================================================  ======  =========  ======  ========
configuration (all with include_comments=False)       F1      precision  recall  accuracy
====================================================  ======  =========  ======  ========
defaults                                              0.960   0.942      0.978   0.293
**chosen**: favor_precision, balanced if < 500 chars  0.968   0.960      0.976   0.331
favor_precision                                       0.964   0.958      0.971   0.337
favor_recall                                          0.959   0.941      0.979   0.287
fast (no fallback extractors)                         0.962   0.946      0.979   0.298
include_tables=False                                  0.957   0.942      0.972   0.293
deduplicate                                           0.951   0.942      0.961   0.293
favor_precision + fast                                0.946   0.947      0.946   0.320
====================================================  ======  =========  ======  ========

The balanced retry threshold: 300 and 500 chars gave 0.969 / 0.968, 1000 and 2000 gave 0.966 / 0.965.
On trafilatura's own snippet benchmark (the 100 pages of ``real-news-pages``) the chosen setting is
level with the defaults: F1 0.937 both (P 0.948 / R 0.926 vs P 0.928 / R 0.946), so the gain is not
bought with recall elsewhere. ``deduplicate`` also keeps a process-wide cache: never on for a crawler.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass
from typing import Any

from pipelines.language import detect_language

logger = logging.getLogger(__name__)

MAX_HTML_CHARS = 5_000_000
TRAFILATURA_OPTIONS: dict[str, Any] = {
    "favor_precision": True,
    "include_comments": False,
    "include_tables": True,
    "deduplicate": False,
    "fast": False,
}
# A shorter precision-mode text is checked against a balanced-mode extraction (the longer one wins).
SHORT_TEXT_CHARS = 500

_SNIFF_BYTES = 4096
_BINARY_CHECK_BYTES = 1024
_LANG_SEARCH_CHARS = 200_000

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF document"),
    (b"\x89PNG\r\n\x1a\n", "image (image/png)"),
    (b"\xff\xd8\xff", "image (image/jpeg)"),
    (b"GIF87a", "image (image/gif)"),
    (b"GIF89a", "image (image/gif)"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed content"),
)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Types that say nothing reliable: the body decides.
_UNKNOWN_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown", "unknown/unknown"}
)
_MAYBE_HTML_TYPES = frozenset({"text/plain", "text/xml", "application/xml"})
# Browsers read these labels as windows-1252, a superset.
_WESTERN_SINGLE_BYTE = frozenset({"ascii", "iso8859-1", "cp1252"})

# Candidates for charset detection: legacy encodings seen on the web. Left open, the detector picks
# exotic code pages (cp1006, cp1255 for KOI8-R) on short inputs.
_WEB_LEGACY_ENCODINGS = [
    "cp1252", "cp1251", "cp1250", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "koi8_r", "koi8_u", "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_15", "mac_cyrillic",
    "gb18030", "big5", "shift_jis", "euc_jp", "euc_kr", "cp874",
]  # fmt: skip

# Bounded repeats: unbounded lazy ones turn quadratic on pages full of unclosed tags.
_ENCODING_LABEL = rb"""\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)"""
_META_CHARSET = re.compile(rb"<meta[^>]{1,500}?charset" + _ENCODING_LABEL, re.IGNORECASE)
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]{1,200}?encoding" + _ENCODING_LABEL, re.IGNORECASE)
_HTML_LOOKING = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|meta|title|div|p|article|h1|script|link)[\s>/]", re.IGNORECASE
)
_LANGUAGE_TAG = r"""\s*=\s*["']?\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)*)"""
_HTML_LANG = re.compile(r"<html\b[^>]{0,500}?(?<![\w-])lang" + _LANGUAGE_TAG, re.IGNORECASE)
_META_LANG = re.compile(
    r"""<meta[^>]{1,300}?(?:http-equiv\s*=\s*["']?content-language|property\s*=\s*["']?og:locale)"""
    r"""["']?[^>]{0,300}?\bcontent""" + _LANGUAGE_TAG,
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Article:
    text: str
    title: str | None
    author: str | None
    date: str | None
    sitename: str | None
    language: str | None
    url: str | None
    description: str | None


# --- sniffing -------------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _has_bom(body: bytes) -> bool:
    return any(body.startswith(bom) for bom, _ in _BOMS)


def _magic_reason(body: bytes) -> str | None:
    for magic, reason in _MAGIC:
        if body.startswith(magic):
            return reason
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image (image/webp)"
    return None


def _looks_binary(body: bytes) -> bool:
    return _magic_reason(body) is not None or (not _has_bom(body) and b"\x00" in body[:_BINARY_CHECK_BYTES])


def _looks_like_html(body: bytes) -> bool:
    return _HTML_LOOKING.search(body[:_SNIFF_BYTES]) is not None


def sniff_non_html(body: bytes, content_type: str | None) -> str | None:
    """A short reason why ``body`` is not an HTML page, or None when it is (or may well be) one."""
    try:
        if not body or body.isspace():
            return "empty body"
        reason = _magic_reason(body)
        if reason is not None:
            return reason
        if not _has_bom(body) and b"\x00" in body[:_BINARY_CHECK_BYTES]:
            return "binary content"
        media_type = _media_type(content_type)
        if media_type in _HTML_TYPES or media_type in _UNKNOWN_TYPES or "/" not in media_type:
            return None
        if media_type in _MAYBE_HTML_TYPES and _looks_like_html(body):
            return None
        if media_type == "application/pdf":
            return "PDF document"
        if media_type.startswith(("image/", "audio/", "video/")):
            return f"{media_type.split('/', 1)[0]} ({media_type})"
        return f"non-HTML content type {media_type}"
    except Exception as exc:  # a sniffer must not take the pipeline down
        logger.warning("sniffing failed: %s", exc)
        return None


# --- decoding -------------------------------------------------------------------------------------


def _codec_name(label: str | None) -> str | None:
    """Python's codec name for an encoding label, or None when unknown or not a text encoding."""
    if not label:
        return None
    label = label.strip().strip("\"'").strip()
    try:
        info = codecs.lookup(label)
    except (LookupError, TypeError, ValueError):
        return None
    # codecs.lookup also knows bytes-to-bytes codecs (base64, zlib, rot13...).
    if not getattr(info, "_is_text_encoding", True):
        return None
    return "cp1252" if info.name in _WESTERN_SINGLE_BYTE else info.name


def _decode_strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError, TypeError):
        return None


def _sniffed_codec(body: bytes) -> str | None:
    head = body[:_SNIFF_BYTES]
    match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    if match is None:
        return None
    codec = _codec_name(match.group(1).decode("ascii", "replace"))
    # A document we could read as ASCII is not UTF-16/32, whatever its meta says (HTML spec rule).
    if codec is not None and codec.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return codec


def _detected(body: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    try:
        best = from_bytes(body, cp_isolation=_WEB_LEGACY_ENCODINGS).best()
    except Exception as exc:
        logger.debug("charset detection failed: %s", exc)
        return None
    return str(best) if best is not None else None


def decode_html(body: bytes, declared_encoding: str | None = None) -> str | None:
    """The page as text: BOM, declared encoding, meta charset, UTF-8, detection, cp1252 - in that order.

    None only for an empty or clearly binary body.
    """
    try:
        if not body:
            return None
        for bom, codec in _BOMS:
            if body.startswith(bom):
                text = _decode_strict(body, codec)
                if text is not None:
                    return text
                break
        declared = _codec_name(declared_encoding)
        wide = declared is not None and declared.startswith(("utf-16", "utf-32"))
        if wide and b"\x00" not in body[:_BINARY_CHECK_BYTES]:
            # UTF-16/32 text without a BOM is full of NUL bytes; this body is ASCII-compatible.
            declared, wide = None, False
        if not wide and _looks_binary(body):
            return None
        if declared is not None:
            text = _decode_strict(body, declared)
            # A single-byte Western label decodes any bytes; it is often a server default or a guess,
            # and valid non-ASCII UTF-8 is practically never meant as windows-1252.
            if text is not None and declared == "cp1252" and not body.isascii():
                text = _decode_strict(body, "utf-8") or text
            if text is not None:
                return text
        sniffed = _sniffed_codec(body)
        if sniffed is not None and sniffed != declared:
            text = _decode_strict(body, sniffed)
            if text is not None:
                return text
        text = _decode_strict(body, "utf-8")
        if text is not None:
            return text
        text = _detected(body)
        if text is not None:
            return text
        return body.decode("cp1252", errors="replace")
    except Exception as exc:
        logger.warning("decoding failed: %s", exc)
        return None


# --- extraction -----------------------------------------------------------------------------------


def _declared_language(html: str) -> str | None:
    head = html[:_LANG_SEARCH_CHARS]
    match = _HTML_LANG.search(head) or _META_LANG.search(head)
    return match.group(1) if match else None


def _field(document: Any, name: str) -> str | None:
    value = document.get(name) if isinstance(document, dict) else getattr(document, name, None)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _bare_extraction(html: str, url: str | None, **overrides: Any) -> Any | None:
    try:
        import trafilatura

        return trafilatura.bare_extraction(html, url=url, **{**TRAFILATURA_OPTIONS, **overrides})
    except Exception as exc:  # lxml and trafilatura raise a variety of errors on odd pages
        logger.warning("extraction failed for %s: %s", url, exc)
        return None


def _prepared(html: str | bytes, url: str | None) -> str | None:
    if isinstance(html, bytes):
        html = decode_html(html) or ""
    if not isinstance(html, str) or not html.strip():
        return None
    if len(html) > MAX_HTML_CHARS:
        logger.info("page %s has %d characters, extracting from the first %d", url, len(html), MAX_HTML_CHARS)
        html = html[:MAX_HTML_CHARS]
    # lxml refuses strings with NUL characters.
    return html.replace("\x00", "")


def extract_article(html: str, url: str | None = None) -> Article | None:
    """The main text and metadata of a page; None when there is no text (never raises)."""
    try:
        prepared = _prepared(html, url)
    except Exception as exc:
        logger.warning("cannot prepare %s for extraction: %s", url, exc)
        return None
    if prepared is None:
        return None
    document = _bare_extraction(prepared, url, with_metadata=True)
    text = _field(document, "text") if document is not None else None
    if text is None or len(text) < SHORT_TEXT_CHARS:
        # Precision mode now and then keeps a fragment of the article; balanced mode then finds it all.
        balanced = _bare_extraction(prepared, url, favor_precision=False, with_metadata=document is None)
        balanced_text = _field(balanced, "text") if balanced is not None else None
        if balanced_text is not None and len(balanced_text) > len(text or ""):
            text = balanced_text
            document = document if document is not None else balanced
    if text is None or document is None:
        logger.debug("nothing extracted from %s", url)
        return None
    try:
        language = detect_language(text, hint=_field(document, "language") or _declared_language(prepared))
    except Exception as exc:
        logger.warning("language detection failed for %s: %s", url, exc)
        language = None
    return Article(
        text=text,
        title=_field(document, "title"),
        author=_field(document, "author"),
        date=_field(document, "date"),
        sitename=_field(document, "sitename"),
        language=language,
        url=_field(document, "url") or url,
        description=_field(document, "description"),
    )
