"""Semantic version comparison, as studios number their builds."""

from __future__ import annotations

import pytest

from bugnet_common.versions import (
    Version,
    compare_versions,
    is_newer,
    newest,
    parse_version,
    version_key,
)


@pytest.mark.parametrize(("older", "newer"), [
    ("1.9.2", "1.10.0"),
    ("1.2", "1.2.1"),
    ("v1.2", "1.3"),
    ("1.2.3-beta.1", "1.2.3"),
    ("1.2.3-alpha", "1.2.3-alpha.1"),
    ("1.2.3-alpha.1", "1.2.3-alpha.beta"),
    ("1.2.3-beta.2", "1.2.3-beta.11"),
    ("1.2.3-beta.11", "1.2.3-rc.1"),
    ("1.0.0-rc1", "1.0.0-rc2"),
    ("1.0.0-rc9", "1.0.0-rc10"),
    ("1.0.0-1", "1.0.0-alpha"),
    ("0.9", "1"),
    ("2024.11.3", "2024.11.28"),
    ("1.2.3.4", "1.2.3.10"),
    ("unknown", "0.0.1"),
    ("build 9", "build 10"),
])
def test_newer_versions_compare_newer(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1
    assert is_newer(newer, older) and not is_newer(older, newer)
    assert sorted([newer, older], key=version_key) == [older, newer]


@pytest.mark.parametrize(("a", "b"), [
    ("1.2", "1.2.0"),
    ("v1.2.0", "1.2"),
    ("V1.2.0", "1.2.0.0"),
    ("1.2.3+build.7", "1.2.3+build.9"),
    ("1.2.3-RC.1", "1.2.3-rc.1"),
    (" 1.2.3 ", "1.2.3"),
])
def test_equal_versions_compare_equal(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0
    assert not is_newer(a, b) and not is_newer(b, a)


def test_parsing_tolerates_prefixes_prereleases_and_build_metadata() -> None:
    assert parse_version("v1.2") == Version(release=(1, 2))
    assert parse_version("1.2.3-beta.1+exp.sha.5114f85") == Version(release=(1, 2, 3), pre=("beta", 1))
    assert parse_version("1.0rc1") == Version(release=(1, 0), pre=("rc", 1))
    for junk in ("unknown", "", "nightly", "1..2", "latest-build", "1.2.3-", None):
        assert parse_version(junk) is None


def test_newest_ignores_missing_and_unparsable_versions() -> None:
    assert newest(None, "1.9.2", "1.10.0", "1.10.0-rc.1") == "1.10.0"
    assert newest("unknown", "0.1") == "0.1"
    assert newest(None, None) is None
    assert newest("1.2", "1.2.0") == "1.2"  # ties keep the first


def test_missing_versions_are_never_newer() -> None:
    assert not is_newer(None, "1.0") and not is_newer("1.0", None) and not is_newer("", "")
