"""web-config.yml building blocks: Go durations, the rate limiter's bucket, certificate SANs."""

from __future__ import annotations

import pytest

from watchkeeper.config.webconfig import (
    RateLimiter,
    certificate_sans,
    parse_go_time_duration_ns,
)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1s", 1_000_000_000),
        ("1.5s", 1_500_000_000),
        (".5ms", 500_000),
        ("1h30m", 5_400_000_000_000),
        ("300us", 300_000),
        ("300\u00b5s", 300_000),
        ("7ns", 7),
        ("-2m", -120_000_000_000),
    ],
)
def test_go_durations_are_parsed_as_go_does(text: str, ns: int) -> None:
    assert parse_go_time_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "1", "1d", "1w", "abc", "s", "1.s.", "--1s"])
def test_what_go_refuses_as_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_time_duration_ns(text)


class _Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_the_bucket_starts_full_and_refills_one_token_per_interval() -> None:
    clock = _Clock()
    limiter = RateLimiter(2.0, 3, now_s=clock)
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]
    clock.now_s += 1.0
    assert not limiter.allow(), "half a token is not enough"
    clock.now_s += 1.0
    assert [limiter.allow(), limiter.allow()] == [True, False]
    clock.now_s += 60.0
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False], "never over burst"


def test_a_zero_burst_refuses_everything_and_a_negative_interval_nothing() -> None:
    clock = _Clock()
    closed = RateLimiter(1.0, 0, now_s=clock)
    clock.now_s += 10.0
    assert not closed.allow()
    assert all(RateLimiter(-1.0, 0, now_s=clock).allow() for _ in range(10))


def test_sans_are_the_dns_email_ip_and_uri_values_written_as_go_writes_them() -> None:
    peercert = {
        "subject": ((("commonName", "client"),),),
        "subjectAltName": (
            ("DNS", "client.example"),
            ("email", "ops@example.org"),
            ("IP Address", "2001:DB8:0:0:0:0:0:1\n"),
            ("IP Address", "0:0:0:0:0:FFFF:A00:1"),
            ("URI", "spiffe://example.org/client"),
            ("DirName", (("commonName", "ignored"),)),
        ),
    }
    assert certificate_sans(peercert) == [
        "client.example",
        "ops@example.org",
        "2001:db8::1",
        "10.0.0.1",
        "spiffe://example.org/client",
    ]
    assert certificate_sans(None) == []
    assert certificate_sans({}) == []
