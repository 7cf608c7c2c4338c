"""The settings of Cloud Run and push dispatch: `PORT` (as Cloud Run sets it) makes `serve`
listen on 0.0.0.0 there; push mode names what it lacks in one line, refuses to start without
a way to tell Cloud Tasks from anyone else, and keeps its secret out of the settings' repr."""

from __future__ import annotations

import pytest

from jobkit import errors
from jobkit_http import settings

PUSH = {
    "JOBKIT_BACKEND": "gcp",
    "JOBKIT_GCS_BUCKET": "a-bucket",
    "JOBKIT_DISPATCH": "push",
    "JOBKIT_TASKS_QUEUE": "projects/p/locations/europe-west1/queues/jobkit-dispatch",
    "JOBKIT_DISPATCH_URL": "https://jobkit-123.europe-west1.run.app/",
    "JOBKIT_DISPATCH_SERVICE_ACCOUNT": "dispatch@p.iam.gserviceaccount.com",
}


def test_port_as_cloud_run_sets_it_means_every_interface_on_that_port() -> None:
    found = settings.from_env({"PORT": "8080"})
    assert (found.host, found.port) == ("0.0.0.0", 8080)


def test_jobkit_host_and_port_win_over_port() -> None:
    found = settings.from_env({"PORT": "8080", "JOBKIT_HOST": "127.0.0.1", "JOBKIT_PORT": "9"})
    assert (found.host, found.port) == ("127.0.0.1", 9)
    assert settings.from_env({}).host == "127.0.0.1"  # no PORT: loopback, as before


def test_push_settings_are_read() -> None:
    found = settings.from_env(PUSH)
    assert found.dispatch == "push"
    assert found.tasks_queue == PUSH["JOBKIT_TASKS_QUEUE"]
    assert found.dispatch_url == "https://jobkit-123.europe-west1.run.app"  # no trailing /
    assert found.dispatch_audience is None  # the URL is the audience
    assert settings.from_env({}).dispatch == "pull"


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("JOBKIT_TASKS_QUEUE", "JOBKIT_TASKS_QUEUE"),
        ("JOBKIT_DISPATCH_URL", "JOBKIT_DISPATCH_URL"),
        ("JOBKIT_DISPATCH_SERVICE_ACCOUNT", "JOBKIT_DISPATCH_SECRET"),
    ],
)
def test_push_without_a_needed_setting_is_refused_naming_it(missing: str, named: str) -> None:
    environ = {k: v for k, v in PUSH.items() if k != missing}
    with pytest.raises(errors.ConfigurationError, match=named):
        settings.from_env(environ)


def test_push_takes_a_secret_instead_of_a_service_account() -> None:
    environ = {k: v for k, v in PUSH.items() if k != "JOBKIT_DISPATCH_SERVICE_ACCOUNT"}
    found = settings.from_env({**environ, "JOBKIT_DISPATCH_SECRET": "s" * 32})
    assert found.dispatch_secret == "s" * 32
    assert "s" * 32 not in repr(found)


def test_push_needs_the_gcp_backend() -> None:
    with pytest.raises(errors.ConfigurationError, match="JOBKIT_BACKEND=gcp"):
        settings.from_env({**PUSH, "JOBKIT_BACKEND": "sqlite"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBKIT_DISPATCH", "sometimes"),
        ("JOBKIT_TASKS_QUEUE", "jobkit-dispatch"),
        ("JOBKIT_DISPATCH_URL", "jobkit.run.app"),
        ("JOBKIT_DISPATCH_SECRET", "short"),
    ],
)
def test_a_bad_push_setting_is_named(name: str, value: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=name):
        settings.from_env({**PUSH, name: value})
