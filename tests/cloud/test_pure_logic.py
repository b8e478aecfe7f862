"""Pure helpers: report merging, ETag and If-Match matching, durations, secret hashing,
outages."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iotistic_cloud.api.admission import retry_after
from iotistic_cloud.cli.durations import parse_duration
from iotistic_cloud.db.availability import DatabaseBusy, OutageLog, unavailable_reason
from iotistic_cloud.episodes import EpisodeLog
from iotistic_cloud.mqtt.link import pin_commands
from iotistic_cloud.services.errors import TooManyRequests
from iotistic_cloud.services.rate_limit import RateLimiter, take
from iotistic_cloud.services.report_merge import merge_report
from iotistic_cloud.services.targets import etag_matches, if_match_holds, make_etag
from iotistic_cloud.tokens import mqtt_password_hash, mqtt_password_matches, new_token, token_hash
from iotistic_contracts.sealed import (
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_pem,
)
from sqlalchemy import exc as sa_exc


def test_full_report_replaces_and_drops_bookkeeping() -> None:
    stored = {"apps": {"1": {"appId": 1}}, "cpu_usage": 5}
    full = {"full": True, "sequence": 9, "reportedAt": "t", "apps": {"2": {"appId": 2}, "3": None}}
    assert merge_report(stored, full) == {"reportedAt": "t", "apps": {"2": {"appId": 2}}}


def test_diff_merges_fields_and_apps() -> None:
    stored = {"apps": {"1": {"appId": 1}, "2": {"appId": 2}}, "cpu_usage": 5, "uptime": 1}
    diff = {"sequence": 3, "apps": {"2": None, "4": {"appId": 4}}, "uptime": 2, "temperature": None}
    assert merge_report(stored, diff) == {
        "apps": {"1": {"appId": 1}, "4": {"appId": 4}},
        "cpu_usage": 5,
        "uptime": 2,
    }
    assert stored["apps"] == {"1": {"appId": 1}, "2": {"appId": 2}}, "input left untouched"


def test_diff_without_a_stored_state() -> None:
    assert merge_report(None, {"sequence": 1, "apps": {"1": None}, "uptime": 3}) == {
        "apps": {},
        "uptime": 3,
    }


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"1-abc"', True),
        ('W/"1-abc"', True),
        ('"0-x", "1-abc"', True),
        ("*", True),
        ('"1-abcd"', False),
        ('"1-ab"', False),
        ("1-abc", False),
        ("", False),
    ],
)
def test_etag_matching(header: str, matches: bool) -> None:
    assert etag_matches(header, '"1-abc"') is matches


def test_etag_is_quoted_and_carries_the_version() -> None:
    assert make_etag(7, "f" * 64) == '"7-' + "f" * 20 + '"'


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("3600s", 3600), ("30m", 1800), ("1h", 3600), ("7d", 604800), (" 2H ", 7200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "1w", "1h30m", "-5", "1.5h", "h"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_token_hashes() -> None:
    token = new_token()
    assert len(token) == 43
    assert token_hash(token) == token_hash(token) != token_hash(new_token())
    stored = mqtt_password_hash(token)
    assert stored.startswith("$7$1000$")
    assert mqtt_password_matches(token, stored)
    assert not mqtt_password_matches(token + "x", stored)
    assert not mqtt_password_matches(token, "$6$garbage")
    assert mqtt_password_hash(token) != stored, "salted"


def test_trusted_private_key_load_gives_the_same_key() -> None:
    """The cloud reads its own exchange keys back with trusted=True (no RSA re-validation)."""
    key = generate_private_key()
    loaded = load_private_key(private_key_pem(key), trusted=True)
    assert public_key_pem(loaded) == public_key_pem(key)


def test_secrets_say_what_they_are_and_never_look_like_a_command_line_option() -> None:
    from iotistic_cloud.tokens import PROVISIONING_KEY_PREFIX, new_token

    # token_urlsafe alone starts with '-' once in 64 draws: `iotctl provision <key>` then
    # read the key as an option (found by CI).
    keys = [new_token(PROVISIONING_KEY_PREFIX) for _ in range(2000)]
    assert all(k.startswith("ipk_") and len(k) == 4 + 43 for k in keys)
    assert len(set(keys)) == len(keys)


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("server said no")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (sa_exc.TimeoutError("QueuePool limit reached"), "busy: no connection free in time"),
        (DatabaseBusy(), "busy: no connection free in time"),
        (
            sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("locked")),
            "OperationalError",
        ),
        (sa_exc.DBAPIError("SELECT", {}, _PgError("57P01")), "_PgError"),  # admin shutdown
        (sa_exc.DBAPIError("SELECT", {}, _PgError("53300")), "_PgError"),  # too many connections
        (ConnectionRefusedError(), "ConnectionRefusedError"),
        (TimeoutError(), "TimeoutError"),
        # Real bugs stay 500s with their traceback in the log.
        (sa_exc.IntegrityError("INSERT", {}, _PgError("23505")), None),
        (sa_exc.DBAPIError("SELECT", {}, _PgError("42P01")), None),  # undefined table
        (ValueError("bug"), None),
    ],
)
def test_database_unavailable_or_a_bug(error: BaseException, reason: str | None) -> None:
    assert unavailable_reason(error) == reason


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = OutageLog(lambda: now[0])
    outage.succeeded()
    for _ in range(3):
        outage.failed("ConnectionRefusedError")
    now[0] += 12.5
    outage.succeeded()
    outage.succeeded()
    assert [record.getMessage() for record in caplog.records] == [
        "database unavailable (ConnectionRefusedError): answering 503 with Retry-After until "
        "it is back",
        "database available again after 12.5 s (3 requests answered 503)",
    ]


@given(
    version=st.integers(0, 2**62),
    other=st.integers(0, 2**62),
    state_hash=st.text("0123456789abcdef", min_size=20, max_size=64),
)
def test_if_match_names_the_current_target_only(version: int, other: int, state_hash: str) -> None:
    etag = make_etag(version, state_hash)
    for holds in (etag, str(version), f'"{version}"', "*", f'"x", {etag}', f" {version} ,x"):
        assert if_match_holds(holds, version, etag), holds
    stale = make_etag(other, state_hash)
    for fails in (f"W/{etag}", f"W/{version}", "", '"x"'):
        assert not if_match_holds(fails, version, etag), fails
    assert if_match_holds(stale, version, etag) == (other == version)
    assert if_match_holds(str(other), version, etag) == (other == version)


def test_device_accounts_without_their_client_id_are_pinned() -> None:
    clients = [
        {"username": "device_a", "roles": []},  # made before the pinning
        {"username": "device_b", "clientid": "device_b"},  # pinned already
        {"username": "device_c", "clientid": "something-else"},
        {"username": "iotistic-cloud"},  # not a device: left alone
        {"username": "dashboard", "clientid": ""},
    ]
    assert pin_commands(clients) == [
        {"command": "modifyClient", "username": "device_a", "clientid": "device_a"},
        {"command": "modifyClient", "username": "device_c", "clientid": "device_c"},
    ]


@given(
    gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=200),
    per_min=st.integers(1, 600),
)
def test_a_token_bucket_never_lets_more_through_than_its_rate(
    gaps: list[float], per_min: int
) -> None:
    """Over any window, at most one minute's worth at once plus the rate times the window;
    a refused request names a wait after which it would pass."""
    per_s, capacity = per_min / 60, float(per_min)
    bucket, now, passed = None, 0.0, []
    for gap in gaps:
        now += gap
        before = bucket
        bucket, wait = take(bucket, now, per_s, capacity)
        if wait == 0:
            passed.append(now)
        else:
            assert wait > 0
            assert take(bucket, now + wait + 1e-9, per_s, capacity)[1] == 0
            assert before is not None
    for i, start in enumerate(passed):
        for j in range(i, len(passed)):
            assert j - i + 1 <= capacity + per_s * (passed[j] - start) + 1e-6


def test_a_rate_limiter_answers_429_with_retry_after_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(12, "device", max_keys=2, monotonic=lambda: now[0])
    limiter.check("a")
    limiter.check("a")  # a sixth of a minute's worth at once: 2
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("a")
    assert refused.value.retry_after_s == 5  # one more every 5 s
    assert "at most 12 a minute" in refused.value.message
    limiter.check("b")  # another key has its own bucket
    now[0] += 5
    limiter.check("a")
    RateLimiter(0, "device").check("a")  # 0: off


def test_an_episode_ends_only_after_a_quiet_period(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    episode = EpisodeLog(
        logging.getLogger("test"), "started ({reason})", "ended after {seconds:.0f} s "
        "({refused} refused)", quiet_s=10, monotonic=lambda: now[0]
    )  # fmt: skip
    episode.failed("busy")
    now[0] = 5
    episode.succeeded()  # too soon: the overload may go on
    episode.failed("busy")
    now[0] = 16
    episode.succeeded()
    assert [r.getMessage() for r in caplog.records] == [
        "started (busy)",
        "ended after 16 s (2 refused)",
    ]


@given(st.integers(1, 3600), st.floats(0, 1, exclude_max=True))
def test_retry_after_of_a_shed_request_is_spread(base: int, draw: float) -> None:
    assert base <= retry_after(base, draw) <= 2 * base
