"""What performers answer: a success value per effect type or an error, and fault schedules."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from hypothesis import strategies as st
from returns.result import Failure, Success

from jobkit import effects, errors
from jobkit.testing import harness
from jobkit.testing.strategies import _values as plain

# A strategy per effect type, or a function of the effect giving one.
Values = Mapping[type[Any], st.SearchStrategy[Any] | Callable[[Any], st.SearchStrategy[Any]]]

CONTENT_TYPES = ("application/pdf", "application/json", "text/plain", "application/octet-stream")

analyses: st.SearchStrategy[effects.Analysis] = st.builds(
    effects.Analysis,
    model=st.sampled_from(("gemini-2.5-flash", "offline", "test-model")),
    output=plain.json_values,
    pages=st.none() | st.integers(min_value=0, max_value=2000),
    document=plain.json_objects(max_size=3),
    usage=st.dictionaries(st.sampled_from(("inputTokens", "outputTokens")), st.integers(0, 10**6)),
)

DEFAULT_VALUES: Values = {
    effects.StatBlob: lambda e: st.builds(
        effects.BlobInfo,
        key=st.just(e.key),
        size=st.integers(min_value=0, max_value=50 * 2**20),
        content_type=st.sampled_from(CONTENT_TYPES),
    ),
    effects.ReadBlob: st.binary(max_size=256),
    effects.WriteBlob: lambda e: st.just(
        effects.BlobInfo(key=e.key, size=len(e.data), content_type=e.content_type)
    ),
    effects.DeleteBlob: st.none(),
    effects.Analyze: analyses,
    effects.ReportProgress: st.none(),
}


def successes(
    effect: effects.PipelineEffect, values: Values | None = None
) -> st.SearchStrategy[Any]:
    """A value `effect`'s performer may return in `Success`: from `values`, else the default
    (`BlobInfo` for `StatBlob` and `WriteBlob`, bytes, `None`, an `Analysis`)."""
    table = {**DEFAULT_VALUES, **(values or {})}
    chosen = table[type(effect)]
    return chosen if isinstance(chosen, st.SearchStrategy) else chosen(effect)


@st.composite
def outcomes(
    draw: st.DrawFn,
    effect: effects.PipelineEffect,
    values: Values | None = None,
    failures: st.SearchStrategy[errors.Error] | None = None,
) -> harness.Answer:
    """`Success` with a value from `successes`, or (one time in four) `Failure` with an error
    from `failures` (default: any, transient or permanent). `ReportProgress` never fails:
    the worker treats progress as best effort."""
    if isinstance(effect, effects.ReportProgress) or draw(st.integers(0, 3)) < 3:
        return Success(draw(successes(effect, values)))
    return Failure(draw(plain.failures() if failures is None else failures))


class Responder:
    """A `harness.Respond` drawing each answer from `outcomes` while the test runs."""

    def __init__(
        self,
        data: st.DataObject,
        values: Values | None,
        failures: st.SearchStrategy[errors.Error] | None,
    ) -> None:
        self._data, self._values, self._errors = data, values, failures

    def __call__(self, effect: effects.PipelineEffect) -> harness.Answer:
        answer = outcomes(effect, self._values, self._errors)
        return self._data.draw(answer, label=f"answer to {type(effect).__name__}")

    def __repr__(self) -> str:
        return "Responder(answers drawn one by one below)"


@st.composite
def responders(
    draw: st.DrawFn,
    values: Values | None = None,
    failures: st.SearchStrategy[errors.Error] | None = None,
) -> Responder:
    """A responder that draws each effect's answer when the pipeline asks for it, so the
    answer can depend on the effect (a `BlobInfo` for the key asked about)."""
    return Responder(draw(st.data()), values, failures)


# -- fault schedules ------------------------------------------------------------------

FALLIBLE: tuple[type, ...] = tuple(
    t for t in harness.EFFECT_TYPES if t is not effects.ReportProgress
)


def faults(
    kinds: Collection[type] = FALLIBLE,
    max_position: int = 8,
    attempts: st.SearchStrategy[int | None] | None = None,
    failures: st.SearchStrategy[errors.Error] | None = None,
) -> st.SearchStrategy[harness.Fault]:
    """A fault at an effect's position (0..`max_position`) or at the first effect of a type
    in `kinds`, striking one attempt (1..3, default) or every attempt (None)."""
    at: st.SearchStrategy[int | type] = st.integers(0, max_position) | st.sampled_from(
        sorted(kinds, key=lambda t: t.__name__)
    )
    return st.builds(
        harness.Fault,
        at=at,
        error=plain.failures() if failures is None else failures,
        attempt=(st.none() | st.integers(1, 3)) if attempts is None else attempts,
    )


def fault_schedules(
    max_faults: int = 3, fault: st.SearchStrategy[harness.Fault] | None = None
) -> st.SearchStrategy[tuple[harness.Fault, ...]]:
    """Up to `max_faults` faults, for `harness.run(..., faults=...)` or `lifecycle.run_job`."""
    return st.lists(faults() if fault is None else fault, max_size=max_faults).map(tuple)
