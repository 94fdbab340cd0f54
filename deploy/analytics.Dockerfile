# The Rapport image plus what the Spark engine needs: a Java 17 runtime, the PostgreSQL JDBC driver
# (the events table is read over JDBC in parallel slices) and PySpark (the `spark` extra), whose
# version must match the cluster's Spark (apache/spark:4.0.1 in deploy/docker-compose.replicas.yml).
#   docker build -f deploy/analytics.Dockerfile -t rapport-analytics .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAPPORT_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless libpostgresql-jdbc-java \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock && pip install --no-cache-dir "pyspark==4.0.1"

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
ENTRYPOINT ["rapport"]
CMD ["analytics", "run", "--engine", "spark"]
