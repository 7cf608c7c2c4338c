"""The shipped Prometheus configuration, rules and Grafana dashboard: promtool accepts them,
the dashboard is Grafana dashboard JSON, and every metric they read is one that a real
`jobkit serve` and a real `jobkit worker` export."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy import monitoring
from tests.jobkit_http.exposition import declared
from tests.jobkit_http.server import serve


def test_promtool_accepts_the_configuration_and_the_rules() -> None:
    promtool = monitoring.tool("promtool")
    config = subprocess.run(
        [promtool, "check", "config", str(monitoring.CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", *map(str, monitoring.RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_the_dashboard_is_grafana_dashboard_json_on_a_prometheus_datasource() -> None:
    board = monitoring.dashboard()
    assert (board["uid"], board["title"]) == ("jobkit", "jobkit")
    assert board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["type"] in {"row", "timeseries", "stat"}
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs)
    titles = {panel["title"] for panel in panels}
    for wanted in ("Jobs by outcome", "Failed attempts by error code", "Queue depth"):
        assert wanted in titles


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The `/metrics` text of a real server (API and worker in one process) and of a real
    `jobkit worker` process, on one data folder."""
    data = tmp_path_factory.mktemp("exposed")
    port = monitoring.free_port()
    environ = {"JOBKIT_DATA": str(data), "JOBKIT_METRICS_PORT": str(port)}
    log = Path(data) / "worker.log"
    with (
        serve(data) as server,
        monitoring.jobkit_process(["worker"], log, environ, "worker started"),
    ):
        yield {
            "serve": monitoring.scrape(f"{server.base_url}/metrics"),
            "worker": monitoring.scrape(f"http://127.0.0.1:{port}/metrics"),
        }


def test_every_metric_the_rules_and_the_dashboard_read_is_exported(
    exposed: dict[str, str],
) -> None:
    expressions = [*monitoring.rule_texts(), *monitoring.dashboard_expressions()]
    wanted = monitoring.metric_names(expressions)
    assert len(wanted) >= 10, wanted  # the names were found at all
    for role, text in exposed.items():
        assert wanted - declared(text) == set(), role
    assert monitoring.recorded_names(expressions) - monitoring.recorded() == set()
    read = monitoring.recorded_names(monitoring.dashboard_expressions())
    assert monitoring.recorded() - read <= {
        "jobkit:external_calls:rate5m",
        "jobkit:breaker_transitions:increase1h",
    }  # recorded for the alerts and ad-hoc queries, not panels
