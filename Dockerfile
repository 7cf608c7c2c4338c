# jobkit's service, as Cloud Run runs it: `jobkit serve` on 0.0.0.0:$PORT, JSON logs on
# stdout, SIGTERM handled within Cloud Run's 10 s (JOBKIT_GRACE_SECONDS, then the leases are
# released and rung for again). Built by Cloud Build: docs/how-to/deploy-cloud-run.md.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/jobkit
# The dependencies first, from pyproject.toml alone: a layer rebuilt only when they change.
COPY pyproject.toml deploy/container/requirements.py ./
RUN python requirements.py pyproject.toml > requirements.txt \
 && /opt/jobkit/bin/pip install --no-cache-dir --requirement requirements.txt
# Then the code, without its dependencies (installed above); then pip itself goes.
COPY README.md ./
COPY jobkit ./jobkit
COPY jobkit_gcp ./jobkit_gcp
COPY jobkit_http ./jobkit_http
RUN /opt/jobkit/bin/pip install --no-cache-dir --no-deps . \
 && /opt/jobkit/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim
ENV PATH=/opt/jobkit/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    JOBKIT_LOG_FORMAT=json \
    JOBKIT_DATA=/tmp/jobkit
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin jobkit
COPY --from=build /opt/jobkit /opt/jobkit
USER 10001
EXPOSE 8080
CMD ["jobkit", "serve"]
