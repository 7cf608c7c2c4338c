"""The hardening settings: how they read, what they refuse, and what they derive."""

from __future__ import annotations

import pytest

from jobkit import errors
from jobkit_http import settings


def test_defaults_are_off_or_generous() -> None:
    chosen = settings.from_env({})
    assert (chosen.user_submits_per_minute, chosen.user_max_pending) == (None, None)
    assert chosen.cors_origins == ()
    assert (chosen.document_workers, chosen.document_cpu_seconds) == (2, 60.0)
    assert chosen.document_memory_mb == 512


def test_values_are_read() -> None:
    chosen = settings.from_env(
        {
            "JOBKIT_CORS_ORIGINS": "https://app.example.com, http://127.0.0.1:5173,http://[::1]:80",
            "JOBKIT_USER_SUBMITS_PER_MINUTE": "30",
            "JOBKIT_USER_MAX_PENDING": "off",
            "JOBKIT_DOCUMENT_WORKERS": "4",
        }
    )
    assert chosen.cors_origins == (
        "https://app.example.com",
        "http://127.0.0.1:5173",
        "http://[::1]:80",
    )
    assert (chosen.user_submits_per_minute, chosen.user_max_pending) == (30.0, None)
    assert chosen.document_workers == 4


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("JOBKIT_CORS_ORIGINS", "*", "one by one"),
        ("JOBKIT_CORS_ORIGINS", "https://app.example.com/", "not an origin"),
        ("JOBKIT_CORS_ORIGINS", "app.example.com", "not an origin"),
        ("JOBKIT_USER_MAX_PENDING", "-3", "must be > 0"),
        ("JOBKIT_USER_SUBMITS_PER_MINUTE", "many", "JOBKIT_USER_SUBMITS_PER_MINUTE='many'"),
        ("JOBKIT_DOCUMENT_WORKERS", "0", "must be >= 1"),
        ("JOBKIT_DOCUMENT_MEMORY_MB", "32", "must be >= 64"),
        ("JOBKIT_ORPHAN_SWEEP_SECONDS", "0", "must be > 0"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(name: str, value: str, said: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=name) as caught:
        settings.from_env({name: value})
    assert said in str(caught.value)


def test_the_orphan_age_is_the_longest_upload_unless_set() -> None:
    assert settings.orphan_age(settings.from_env({})) == 50 * 1024 * 1024 / (16 * 1024)
    small = settings.from_env({"JOBKIT_MAX_UPLOAD_BYTES": "1048576"})
    assert settings.orphan_age(small) == settings.MIN_ORPHAN_AGE_SECONDS
    chosen = settings.from_env({"JOBKIT_ORPHAN_AGE_SECONDS": "90"})
    assert settings.orphan_age(chosen) == 90.0
