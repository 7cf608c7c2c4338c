"""Reading Prometheus text as a scraper does (prometheus-client's own parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample `name` whose labels include `labels`; None when there is none. Several
    matches are summed (a subset of the labels names a group)."""
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None


def declared(text: str) -> set[str]:
    """Every sample name the exposition declares (by its `# TYPE` lines), with the
    suffixes a query may use: a counter's `_total`, a histogram's `_bucket`, `_sum`,
    `_count`; whether or not it has samples yet (a labelled metric has none until used)."""
    names: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(" ", 3)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif kind == "counter":
            names |= {name if name.endswith("_total") else f"{name}_total"}
        else:
            names.add(name)
    return names
