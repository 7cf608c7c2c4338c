"""Settings read from the environment: Google's own variables as fallbacks, Gemini's
defaults and limits, and secrets kept out of messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobkit import errors
from jobkit.local.sqlite import SqliteJobStore
from jobkit_http import backends, settings


def test_the_gcp_project_falls_back_to_google_cloud_project() -> None:
    assert settings.from_env({"GOOGLE_CLOUD_PROJECT": "theirs"}).gcp_project == "theirs"
    both = {"GOOGLE_CLOUD_PROJECT": "theirs", "JOBKIT_GCP_PROJECT": "ours"}
    assert settings.from_env(both).gcp_project == "ours"
    assert settings.from_env({}).gcp_project is None


def test_the_gemini_api_key_comes_from_googles_variables_in_their_order() -> None:
    assert settings.from_env({"GEMINI_API_KEY": "g"}).gemini_api_key == "g"
    assert settings.from_env({"GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "k"}).gemini_api_key == "k"
    chosen = {"GOOGLE_API_KEY": "k", "JOBKIT_GEMINI_API_KEY": "j"}
    assert settings.from_env(chosen).gemini_api_key == "j"


def test_the_api_key_never_shows_in_the_settings_repr() -> None:
    assert "sekrit" not in repr(settings.from_env({"GOOGLE_API_KEY": "sekrit"}))


def test_the_default_model_is_the_analyzers() -> None:
    from jobkit_gcp.gemini import DEFAULT_MODEL, GeminiConfig

    assert settings.Settings().gemini_model == DEFAULT_MODEL
    assert settings.Settings().vertex_location == GeminiConfig().location


def test_allowed_models_are_a_comma_separated_list() -> None:
    read = settings.from_env({"JOBKIT_GEMINI_MODELS": " gemini-3.8-flash, ,gemini-x "})
    assert read.gemini_models == frozenset({"gemini-3.8-flash", "gemini-x"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBKIT_ANALYZER", "claude"),
        ("JOBKIT_GEMINI_REQUESTS_PER_MINUTE", "0"),
        ("JOBKIT_GEMINI_TOKENS_PER_MINUTE", "-5"),
        ("JOBKIT_GEMINI_MAX_PAGES", "0"),
        ("JOBKIT_GEMINI_TIMEOUT_SECONDS", "0"),
        ("JOBKIT_GEMINI_INPUT_PRICE", "-1"),
        ("JOBKIT_GEMINI_BREAKER_FAILURES", "0"),
        ("JOBKIT_GEMINI_MODEL", " "),
    ],
)
def test_a_bad_gemini_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=name):
        settings.from_env({name: value})


def test_fair_claiming_is_on_unless_turned_off_and_reaches_the_store(tmp_path: Path) -> None:
    assert settings.from_env({}).fair_claiming is True
    off = settings.from_env({"JOBKIT_FAIR_CLAIMING": "false", "JOBKIT_DATA": str(tmp_path)})
    assert off.fair_claiming is False
    store = backends.runtime_for(off).raw_store
    assert isinstance(store, SqliteJobStore)
    assert store.fair is False
    with pytest.raises(errors.ConfigurationError, match="JOBKIT_FAIR_CLAIMING"):
        settings.from_env({"JOBKIT_FAIR_CLAIMING": "sometimes"})
