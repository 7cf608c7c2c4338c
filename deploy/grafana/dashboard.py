"""The Grafana dashboard `jobkit.json`, from the panel list below: `python docs/generate.py`
writes it (and a test checks it is current). Panels read the recording rules of
`deploy/prometheus/rules.yml`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent / "jobkit.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TYPE = 'type=~"$type"'
QUEUE = 'queue=~"$queue"'

# (title, description, kind, unit, [(query, legend)], width)
Panel = tuple[str, str, str, str, list[tuple[str, str]], int]

ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Throughput",
        [
            (
                "Jobs by outcome",
                "Jobs finished per second, by how they ended; retried attempts apart.",
                "timeseries",
                "ops",
                [
                    (
                        "sum by (event) (jobkit:job_events:rate5m"
                        f'{{event=~"completed|failed|cancelled|retried",{TYPE},{QUEUE}}})',
                        "{{event}}",
                    )
                ],
                12,
            ),
            (
                "Failed attempts by error code",
                "Failed or stalled attempts per second, by error code and fate.",
                "timeseries",
                "ops",
                [
                    (
                        "sum by (code, outcome)"
                        f" (jobkit:attempt_failures:rate5m{{{TYPE},{QUEUE}}})",
                        "{{code}} ({{outcome}})",
                    )
                ],
                8,
            ),
            (
                "Failure ratio",
                "Share of finished jobs that failed (after their retries).",
                "stat",
                "percentunit",
                [(f"jobkit:job_failure_ratio:rate5m{{{TYPE}}}", "{{type}}")],
                4,
            ),
        ],
    ),
    (
        "Queues",
        [
            (
                "Queue depth",
                "Due pending jobs (the backlog), all pending jobs and running ones.",
                "timeseries",
                "short",
                [
                    (f"jobkit:jobs_due:max{{{QUEUE}}}", "due {{queue}}"),
                    (f"jobkit:jobs:max{{{QUEUE}}}", "{{status}} {{queue}}"),
                ],
                12,
            ),
            (
                "Oldest due job",
                "How long the oldest due job of each queue has waited.",
                "timeseries",
                "s",
                [(f"jobkit:oldest_due_job_age_seconds:max{{{QUEUE}}}", "{{queue}}")],
                8,
            ),
            (
                "Worker slots",
                "Slots of every worker process: busy or free.",
                "stat",
                "short",
                [("jobkit:worker_slots:sum", "{{state}}")],
                4,
            ),
        ],
    ),
    (
        "Latency",
        [
            (
                "Wait in queue",
                "From when a job is due to its claim: p50, p95, p99.",
                "timeseries",
                "s",
                [
                    (
                        f"max by (queue) (jobkit:job_wait_seconds:{q}_5m{{{TYPE},{QUEUE}}})",
                        f"{q} {{{{queue}}}}",
                    )
                    for q in ("p50", "p95", "p99")
                ],
                8,
            ),
            (
                "Run time per attempt",
                "One attempt's run time, by job type and outcome: p50, p95, p99.",
                "timeseries",
                "s",
                [
                    (f"jobkit:attempt_seconds:p50_5m{{{TYPE}}}", "p50 {{type}} {{outcome}}"),
                    (f"jobkit:attempt_seconds:p95_5m{{{TYPE}}}", "p95 {{type}} {{outcome}}"),
                    (f"jobkit:attempt_seconds:p99_5m{{{TYPE}}}", "p99 {{type}} {{outcome}}"),
                ],
                8,
            ),
            (
                "End to end",
                "From submission to a terminal status (p95), by job type and status.",
                "timeseries",
                "s",
                [(f"jobkit:job_duration_seconds:p95_5m{{{TYPE}}}", "{{type}} {{status}}")],
                8,
            ),
        ],
    ),
    (
        "Dependencies",
        [
            (
                "External calls p95",
                "Store, blob and analyzer calls: p95 latency by operation.",
                "timeseries",
                "s",
                [("jobkit:external_call_seconds:p95_5m", "{{target}} {{operation}}")],
                8,
            ),
            (
                "External call errors",
                "Share of store, blob and analyzer calls that failed.",
                "timeseries",
                "percentunit",
                [("jobkit:external_call_errors:ratio_rate5m", "{{target}}")],
                8,
            ),
            (
                "Breaker and rate limit",
                "1 while a breaker is open; seconds spent waiting for the rate limiter per second.",
                "timeseries",
                "short",
                [
                    ("jobkit:breaker_open:max", "{{breaker}} open"),
                    ("jobkit:rate_limit_wait_seconds:rate5m", "{{limiter}} waiting"),
                ],
                8,
            ),
            (
                "Model tokens",
                "Tokens per second sent to and answered by each model.",
                "timeseries",
                "short",
                [("jobkit:model_tokens:rate5m", "{{model}} {{kind}}")],
                12,
            ),
            (
                "Model cost (last hour)",
                "Estimated cost of the model calls over the last hour, in US dollars.",
                "stat",
                "currencyUSD",
                [("jobkit:model_cost_usd:increase1h", "{{model}}")],
                12,
            ),
        ],
    ),
    (
        "API and processes",
        [
            (
                "Requests by status",
                "API requests per second, by route and status.",
                "timeseries",
                "reqps",
                [("sum by (route, status) (jobkit:http_requests:rate5m)", "{{route}} {{status}}")],
                8,
            ),
            (
                "Request latency p95",
                "API request latency (p95) by route.",
                "timeseries",
                "s",
                [("jobkit:http_request_seconds:p95_5m", "{{route}}")],
                8,
            ),
            (
                "Process memory",
                "Resident memory of each jobkit process.",
                "timeseries",
                "bytes",
                [
                    (
                        'process_resident_memory_bytes{job=~"jobkit-.*"}',
                        "{{instance}}",
                    )
                ],
                8,
            ),
        ],
    ),
]


def _panel(panel_id: int, x: int, y: int, panel: Panel) -> dict[str, Any]:
    title, description, kind, unit, queries, width = panel
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
        if kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + number),
            }
            for number, (expr, legend) in enumerate(queries)
        ],
    }


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for title, row in ROWS:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x = 0
        for panel in row:
            if x + panel[5] > 24:
                x, y = 0, y + 8
            panels.append(_panel(len(panels) + 1, x, y, panel))
            x += panel[5]
        y += 8
    return {
        "uid": "jobkit",
        "title": "jobkit",
        "description": "Jobs, queues, latency and dependencies of jobkit (docs/how-to/operate.md).",
        "tags": ["jobkit"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                _variable("type", "Job type", "label_values(jobkit_job_events_total, type)"),
                _variable("queue", "Queue", "label_values(jobkit_job_events_total, queue)"),
            ]
        },
        "panels": panels,
    }


def text() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
