"""Running attempts: a claimed job's pipeline up to its first effect, then as a task under
its type's timeout, its outcome as the event that ends it, its progress, its heartbeats,
and, at a shutdown, the grace period and the release of what outlasts it."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from returns.result import Failure, Success

from jobkit import effects, errors, events, jobs, pipeline, registry
from jobkit.worker import journal
from jobkit.worker.config import Attempt, PerformersFor, WorkerConfig, log
from jobkit.worker.interpreter import Performer, interpret
from jobkit.worker.writes import Writes


class Attempts:
    """The attempts this worker runs.

    State it owns: the running attempts by job id (`running`), from the claim's landing
    until the attempt's last write is settled. Writing goes through `writes`; `wake()`
    tells the loop a slot may have come free.
    """

    def __init__(
        self,
        *,
        types: registry.Registry,
        config: WorkerConfig,
        worker_id: str,
        rng: random.Random,
        performers_for: PerformersFor,
        writes: Writes,
        wake: Callable[[], None],
    ) -> None:
        self._types = types
        self._config = config
        self._worker_id = worker_id
        self._rng = rng
        self._performers_for = performers_for
        self._writes = writes
        self._wake = wake
        self.running: dict[str, Attempt] = {}
        self._flushing: set[asyncio.Future[Success[None]]] = set()  # waiting reports' writes

    def forget(self, attempt: Attempt) -> None:
        """The attempt's last write is settled: its slot is free. (A lost attempt may end
        after this worker claimed its job again: the new attempt stays.)"""
        job_id = jobs.id(attempt.job)
        if self.running.get(job_id) is attempt:
            del self.running[job_id]
        self._wake()

    def _track(self, job: jobs.Job) -> Attempt:
        attempt = Attempt(job=job, claim=jobs.claim(job))
        attempt.renewed = attempt.last_progress = asyncio.get_running_loop().time()
        self.running[jobs.id(job)] = attempt
        return attempt

    async def hand_back(self, job: jobs.Job) -> None:
        """Release a job claimed while stopping, untouched."""
        attempt = self._track(job)
        await self._writes.release(attempt)
        self.forget(attempt)

    def start(self, job: jobs.Job) -> None:
        """Run the attempt's pipeline up to its first effect here; only an attempt that has
        an effect to wait for gets a task. One that asks for nothing is finished at once."""
        attempt = self._track(job)
        job_type = registry.get(self._types, jobs.type_name(job))
        deadline = asyncio.get_running_loop().time() + job_type.timeout_seconds
        try:
            run = job_type.pipeline(job, attempt.claim)
            first = next(run)
        except StopIteration as stop:  # done without an effect
            event = self._outcome(attempt, job_type, stop.value)
        except Exception as exc:  # a bug in the pipeline: record it, keep working
            event = self._crashed(attempt, job_type, exc)
        else:
            attempt.task = asyncio.create_task(
                self._attempt(attempt, job_type, run, first, deadline), name=f"job:{jobs.id(job)}"
            )
            return
        if not self._writes.finish(attempt, event):
            self.forget(attempt)

    async def _attempt(
        self,
        attempt: Attempt,
        job_type: registry.JobType,
        run: pipeline.Pipeline,
        first: effects.PipelineEffect,
        deadline: float,
    ) -> None:
        queued = False
        job = attempt.job
        journal.enter(  # every line this attempt's task logs says which job it is about
            jobId=jobs.id(job),
            userId=jobs.user_id(job),
            jobType=jobs.type_name(job),
            queue=jobs.queue(job),
            attempt=attempt.claim,
            workerId=self._worker_id,
        )
        try:
            event = await self._execute(attempt, job_type, run, first, deadline)
            if attempt.lock.locked():  # a heartbeat or progress report is being written
                await self._writes.advance(attempt, event)  # waits for it, then writes alone
            else:
                queued = self._writes.finish(attempt, event)
        except asyncio.CancelledError:
            if not attempt.lost:
                raise  # shutdown: `stop` releases the lease
        except Exception:  # the final write failed: the lease runs out, the reaper acts
            log.exception(
                "writing an attempt's outcome failed", extra={"jobId": jobs.id(attempt.job)}
            )
        finally:
            # Unless its write is queued (which forgets it once written): `stop` keeps its
            # own list of the attempts it cancels, and an attempt left here would keep a
            # drain waiting for it forever.
            if not queued:
                self.forget(attempt)

    async def _execute(
        self,
        attempt: Attempt,
        job_type: registry.JobType,
        run: pipeline.Pipeline,
        first: effects.PipelineEffect,
        deadline: float,
    ) -> events.Event:
        async def report(current: int, total: int, message: str) -> None:
            effect = effects.ReportProgress(current=current, total=total, message=message)
            await self._progress(attempt, effect)

        attempt.report = report
        performers: dict[type, Any] = {
            kind: _watched(attempt, kind.__name__, perform)
            for kind, perform in self._performers_for(attempt).items()
        }
        performers[effects.ReportProgress] = lambda effect: self._progress(attempt, effect)
        try:
            # The timeout counts from the attempt's start; it is armed at the first effect,
            # since nothing before it waited.
            async with asyncio.timeout_at(deadline):
                outcome = await interpret(run, performers, first)
        except TimeoutError:
            limit = job_type.timeout_seconds
            outcome = Failure(errors.transient("timeout", f"the job ran longer than {limit:g} s"))
        except Exception as exc:  # a bug in a performer or pipeline: record it, keep working
            return self._crashed(attempt, job_type, exc)
        return self._outcome(attempt, job_type, outcome)

    def _outcome(self, attempt: Attempt, job_type: registry.JobType, outcome: Any) -> events.Event:
        report = self._unwritten(attempt)
        match outcome:
            case Success(completion):
                return events.AttemptSucceeded(
                    worker=self._worker_id,
                    claim=attempt.claim,
                    result=completion.result,
                    result_key=completion.document_key,
                    progress=None
                    if report is None
                    else (report.current, report.total, report.message),
                )
            case Failure(err):
                attempt.failure = journal.FailurePoint(effect=attempt.effect, step=attempt.step)
                return self._failed(attempt, job_type, err)
            case _:
                problem = errors.JobkitError(f"pipeline returned {outcome!r}, not a Result")
                return self._crashed(attempt, job_type, problem)

    def _crashed(
        self, attempt: Attempt, job_type: registry.JobType, exc: Exception
    ) -> events.Event:
        """A bug in a pipeline or performer: a retryable `internal` error; its stack goes
        with the failed attempt's log line."""
        attempt.failure = journal.FailurePoint(
            effect=attempt.effect, step=attempt.step, exception=exc
        )
        err = errors.error(
            "internal",
            f"{type(exc).__name__}: {exc}",
            retryable=True,
            context={"exception": type(exc).__name__},
        )
        return self._failed(attempt, job_type, err)

    def _failed(
        self, attempt: Attempt, job_type: registry.JobType, err: errors.Error
    ) -> events.Event:
        self._unwritten(attempt)  # a failure keeps the progress last written
        return events.AttemptFailed(
            worker=self._worker_id,
            claim=attempt.claim,
            error=err,
            policy=job_type.retry,
            sample=self._rng.random(),
        )

    def _unwritten(self, attempt: Attempt) -> events.ProgressReported | None:
        """The attempt ends: the report still waiting for its write, which the end's write
        records instead (when it succeeds; a failure keeps the progress last written)."""
        report, attempt.pending = attempt.pending, None
        if attempt.flush is not None:
            attempt.flush.cancel()
            attempt.flush = None
        return report

    async def _progress(self, attempt: Attempt, effect: effects.ReportProgress) -> Success[None]:
        """Write the report now if the last progress write (or the claim) is at least
        `progress_seconds` old; else keep it, the latest only, for a write when that time
        comes (if the attempt still runs) or for the attempt's end. A report completing its
        total always waits `progress_seconds` for the end. A job that finishes within
        `progress_seconds` of its claim writes no progress of its own."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        attempt.step = effect.message or f"{effect.current}/{effect.total}"
        event = events.ProgressReported(
            worker=self._worker_id,
            claim=attempt.claim,
            current=effect.current,
            total=effect.total,
            message=effect.message,
        )
        wait = attempt.last_progress + self._config.progress_seconds - now
        if effect.current == effect.total and wait <= 0:
            # It completes its total: the attempt's end is likely next, and records it.
            wait = self._config.progress_seconds
        if wait > 0 and 0 <= effect.current <= effect.total:
            attempt.pending = event
            if attempt.flush is None:
                attempt.flush = loop.call_later(wait, self._flush, attempt)
            return Success(None)
        return await self._report(attempt, event)

    def _flush(self, attempt: Attempt) -> None:
        """The throttle allows a write: write the waiting report, if the attempt still runs."""
        attempt.flush = None
        event, attempt.pending = attempt.pending, None
        if event is None or attempt.closed or attempt.lost or attempt.task is None:
            return
        if attempt.task.done():
            return
        flushing = asyncio.ensure_future(self._report(attempt, event))
        self._flushing.add(flushing)
        flushing.add_done_callback(self._flushing.discard)

    async def _report(self, attempt: Attempt, event: events.ProgressReported) -> Success[None]:
        attempt.last_progress = asyncio.get_running_loop().time()
        try:
            kept = await self._writes.advance(attempt, event)
        except Exception:  # progress is best-effort: the work goes on, the next report or
            log.warning(  # the end tells the store
                "a progress report was not written",
                exc_info=True,
                extra={"jobId": jobs.id(attempt.job), "attempt": attempt.claim},
            )
            return Success(None)
        if not kept and attempt.task is not None:
            attempt.task.cancel()  # the lease is gone: stop spending on the work
        return Success(None)

    async def heartbeats(self) -> None:
        """Renew every running attempt's lease each `heartbeat_seconds`, until cancelled."""
        while True:
            await asyncio.sleep(self._config.heartbeat_seconds)
            beats = [
                self._beat(attempt)
                for attempt in list(self.running.values())
                if not (attempt.lost or attempt.closed)
            ]
            await asyncio.gather(*beats)

    async def _beat(self, attempt: Attempt) -> None:
        event = events.Heartbeat(
            worker=self._worker_id, claim=attempt.claim, lease_seconds=self._config.lease_seconds
        )
        fields = {"jobId": jobs.id(attempt.job), "attempt": attempt.claim}
        try:
            renewed = await self._writes.advance(attempt, event)
        except Exception:  # unknown whether it landed: the next beat tells (or the reaper)
            log.exception("a heartbeat failed", extra=fields)
            return
        if not renewed:
            if attempt.task is not None:
                attempt.task.cancel()  # the work is someone else's now; stop spending on it
            return
        now = asyncio.get_running_loop().time()
        left = self._config.lease_seconds - (now - attempt.renewed)
        attempt.renewed = now
        if left < self._config.lease_seconds / 3:  # a beat should come with two thirds left
            log.warning(
                "lease renewed late: %.3g s of %g s were left",
                left,
                self._config.lease_seconds,
                extra={**fields, "secondsLeft": round(left, 3), "workerId": self._worker_id},
            )

    async def stop(self) -> int:
        """Let running attempts finish within the grace period, then release the rest; how
        many it released."""
        tasks = [a.task for a in self.running.values() if a.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self._config.grace_seconds)
        unfinished = [a for a in self.running.values() if a.task is not None and not a.task.done()]
        for attempt in unfinished:
            assert attempt.task is not None
            attempt.task.cancel()
        await asyncio.gather(*(a.task for a in unfinished if a.task), return_exceptions=True)
        for attempt in unfinished:
            await self._writes.release(attempt)
        return len(unfinished)


def _watched(attempt: Attempt, name: str, perform: Performer) -> Performer:
    """`perform`, noting on the attempt the effect in flight (a failure's point) and
    logging each call's duration at DEBUG."""

    async def watched(effect: Any) -> Any:
        attempt.effect = name
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await perform(effect)
        ok = isinstance(answer, Success)
        if ok:
            attempt.effect = None
        if log.isEnabledFor(logging.DEBUG):
            seconds = loop.time() - started
            log.debug(
                "effect %s %s in %.3g ms",
                name,
                "done" if ok else "failed",
                seconds * 1000,
                extra={"effect": name, "seconds": round(seconds, 6), "ok": ok},
            )
        return answer

    return watched
