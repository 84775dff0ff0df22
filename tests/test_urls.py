from hypothesis import given
from hypothesis import strategies as st

from pipelines.urls import blocked_address_reason, canonicalize_url, host_of


def test_strips_tracking_parameters_and_fragment() -> None:
    url = "HTTPS://WWW.Example.com:443/news/a?utm_source=rss&id=7&fbclid=x&utm_medium=feed#comments"
    assert canonicalize_url(url) == "https://www.example.com/news/a?id=7"


def test_sorts_query_and_keeps_meaningful_parameters() -> None:
    assert canonicalize_url("http://example.com/p?b=2&a=1") == "http://example.com/p?a=1&b=2"
    assert canonicalize_url("http://example.com:8080/") == "http://example.com:8080/"


def test_normalises_percent_encoding_and_empty_path() -> None:
    assert canonicalize_url("http://example.com") == "http://example.com/"
    assert canonicalize_url("http://example.com/a%20b/%D0%91") == canonicalize_url("http://example.com/a b/Б")


def test_rejects_non_http_links() -> None:
    for url in (
        "javascript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,hi",
        "mailto:a@b",
        "/relative",
        "",
    ):
        assert canonicalize_url(url) is None
    assert canonicalize_url("http://[::1:bad") is None


def test_host_of() -> None:
    assert host_of("https://www.bbc.co.uk/news") == "bbc.co.uk"
    assert host_of("not a url") is None


def test_address_policy() -> None:
    assert blocked_address_reason("127.0.0.1") == "loopback address"
    assert blocked_address_reason("127.0.0.1", allow_loopback=True) is None
    assert blocked_address_reason("10.1.2.3", allow_loopback=True) == "private or reserved address"
    assert blocked_address_reason("169.254.169.254") == "link-local address"
    assert blocked_address_reason("[::1]") == "loopback address"
    assert blocked_address_reason("93.184.216.34") is None
    assert blocked_address_reason("example.com") is None


@given(st.text(max_size=200))
def test_canonicalize_never_raises_and_is_idempotent(text: str) -> None:
    once = canonicalize_url(text)
    if once is not None:
        assert once.startswith(("http://", "https://"))
        assert canonicalize_url(once) == once


@given(
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z]{1,10}\.(com|org|az|ru)", fullmatch=True),
    st.lists(st.from_regex(r"[a-zA-Z0-9_-]{1,8}", fullmatch=True), max_size=4),
    st.dictionaries(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True),
        st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True),
        max_size=3,
    ),
)
def test_tracking_parameters_never_change_identity(
    scheme: str, host: str, path: list[str], query: dict
) -> None:
    from urllib.parse import urlencode

    base = f"{scheme}://{host}/{'/'.join(path)}" + (f"?{urlencode(query)}" if query else "")
    tracked = base + ("&" if query else "?") + "utm_source=x&utm_campaign=y"
    assert canonicalize_url(tracked) == canonicalize_url(base)
