#!/usr/bin/env bash
# Push dispatch's Google Cloud side: the Cloud Tasks queue that holds one doorbell per due job
# (its rate limits are the service's global Gemini limit) and the Cloud Scheduler job that
# calls POST /internal/sweep every minute. Idempotent: creates, or updates what exists.
#
#   PROJECT=my-project REGION=europe-west1 \
#   SERVICE_URL=https://jobkit-123456789012.europe-west1.run.app \
#   DISPATCH_ACCOUNT=jobkit-dispatch@my-project.iam.gserviceaccount.com \
#   GEMINI_RPM=60 bash deploy/cloud-run/dispatch.sh
#
# GEMINI_RPM: the Gemini requests per minute the project may spend on jobkit. One dispatch
# is one attempt, and one attempt of a PDF job is one Gemini call: the queue dispatches at
# most GEMINI_RPM/60 per second and at most MAX_CONCURRENT at once, whatever the number of
# instances (docs/how-to/deploy-cloud-run.md says how to choose them).
set -euo pipefail
: "${PROJECT:?}" "${REGION:?}" "${SERVICE_URL:?}" "${DISPATCH_ACCOUNT:?}"
QUEUE="${QUEUE:-jobkit-dispatch}"
GEMINI_RPM="${GEMINI_RPM:-60}"
MAX_CONCURRENT="${MAX_CONCURRENT:-50}"
RATE=$(python3 -c "print(round(${GEMINI_RPM} / 60, 3))")

queue_flags=(
  --location="$REGION"
  --project="$PROJECT"
  --max-dispatches-per-second="$RATE"
  --max-concurrent-dispatches="$MAX_CONCURRENT"
  --max-attempts=-1          # a doorbell asking to come again (503) is never dropped
  --min-backoff=1s
  --max-backoff=60s
  --max-doublings=4
)
if gcloud tasks queues describe "$QUEUE" --location="$REGION" --project="$PROJECT" >/dev/null 2>&1; then
  gcloud tasks queues update "$QUEUE" "${queue_flags[@]}"
else
  gcloud tasks queues create "$QUEUE" "${queue_flags[@]}"
fi

scheduler_flags=(
  --location="$REGION"
  --project="$PROJECT"
  --schedule="* * * * *"
  --uri="${SERVICE_URL%/}/internal/sweep"
  --http-method=POST
  --oidc-service-account-email="$DISPATCH_ACCOUNT"
  --oidc-token-audience="${SERVICE_URL%/}"
  --attempt-deadline=60s
)
if gcloud scheduler jobs describe jobkit-sweep --location="$REGION" --project="$PROJECT" >/dev/null 2>&1; then
  gcloud scheduler jobs update http jobkit-sweep "${scheduler_flags[@]}"
else
  gcloud scheduler jobs create http jobkit-sweep "${scheduler_flags[@]}"
fi
