"""The internal endpoints of push dispatch, mounted only with `JOBKIT_DISPATCH=push` and kept
out of the OpenAPI document (they are for Cloud Tasks and Cloud Scheduler, not for users;
`docs/explanation/push-dispatch.md` describes them):

- `POST /internal/dispatch`: a doorbell. Runs one due job to the end inside the request and
  answers `200` with what happened, `200` at once when nothing is due; `503` when the
  doorbell should come again (this instance is stopping, the job was released at its
  shutdown, other dispatches took every due job first), `500` when the outcome could not
  be written. Cloud Tasks retries a task on any non-2xx answer.
- `POST /internal/sweep`: reaps expired leases and rings for due jobs no doorbell waits for
  (Cloud Scheduler, every minute).

Both take only Cloud Tasks' or Cloud Scheduler's OIDC token for the dispatch service
account, or the dispatch secret (`jobkit_http.callers`).
"""

from __future__ import annotations

import logging

import attrs
from returns.result import Failure, Success
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobkit.worker.dispatch import Dispatcher, Outcome
from jobkit_http.callers import Callers
from jobkit_http.problems import Problem

log = logging.getLogger("jobkit.dispatch")

RETRY_AFTER_SECONDS = "1"


@attrs.frozen
class Push:
    """What the internal endpoints need: the dispatcher and who may call."""

    dispatcher: Dispatcher
    callers: Callers


def _push(request: Request) -> Push:
    found: Push = request.app.state.push
    return found


async def _admit(request: Request, push: Push) -> None:
    match await push.callers.check(request.headers):
        case Success(_):
            return
        case Failure(failure):
            log.warning(
                "internal call refused: %s",
                failure.detail,
                extra={"path": request.url.path, "reason": failure.detail},
            )
            raise Problem(
                failure.status,
                "unauthorized",
                failure.detail,
                title=failure.title,
                headers={"WWW-Authenticate": failure.www_authenticate},
            )


async def dispatch(request: Request) -> Response:
    push = _push(request)
    await _admit(request, push)
    outcome = await push.dispatcher.dispatch()
    status = 500 if outcome.result is None else 503 if outcome.again else 200
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return JSONResponse(_shown(outcome), status_code=status, headers=headers)


def _shown(outcome: Outcome) -> dict[str, object]:
    return {
        "result": outcome.result or "unrecorded",
        "jobId": outcome.job_id,
        "attempt": outcome.attempt,
    }


async def sweep(request: Request) -> Response:
    push = _push(request)
    await _admit(request, push)
    swept = await push.dispatcher.sweep()
    return JSONResponse(
        {"reaped": swept.reaped, "due": swept.due, "waiting": swept.waiting, "rung": swept.rung}
    )


ROUTES = [
    Route("/internal/dispatch", dispatch, methods=["POST"], name="internal_dispatch"),
    Route("/internal/sweep", sweep, methods=["POST"], name="internal_sweep"),
]
