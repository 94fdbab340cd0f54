# Rapport: the bot, its scheduler and the CLI in one image.
#   docker build -t rapport .
#   docker run --env-file .env -v rapport-data:/data rapport run
# The runtime lock only: no test or lint tools in the image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAPPORT_DATA_DIR=/data

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md LICENSE ./
COPY store ./store
COPY nlu ./nlu
COPY analytics ./analytics
COPY scheduler ./scheduler
COPY bot ./bot
COPY fakeapi ./fakeapi
COPY demo ./demo
COPY cli ./cli
COPY dashboard ./dashboard
COPY ingest ./ingest
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /data rapport \
    && mkdir -p /data && chown rapport /data

USER rapport
VOLUME ["/data"]
# `rapport db status` connects to the database without changing it: unhealthy when the store is down.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["rapport", "db", "status"]
ENTRYPOINT ["rapport"]
CMD ["run"]
