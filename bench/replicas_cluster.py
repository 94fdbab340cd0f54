"""Real `rapport run --webhook` replicas behind nginx on 127.0.0.1, for the replica test and benchmark.

`ReplicaCluster` migrates the database once (replicas starting together must not race Alembic),
writes an nginx configuration whose upstream is the replicas, starts nginx and the replicas as
subprocesses (each with its own data directory, so its own spool), and stops or kills them.
nginx retries a request on the next replica when one refuses the connection or drops it
(`proxy_next_upstream error timeout non_idempotent`): a POST that may have reached a replica
before it died is re-sent, which is exactly the duplicate the replicas' claims absorb.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, select

from store.models import Lease

REPO = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
WEBHOOK_PATH = "/telegram"
RUN = (sys.executable, "-c", "from cli import main; main()", "run")

_NGINX_CONF = """\
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream rapport {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location {path} {{
            proxy_pass http://rapport;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 1s;
            proxy_read_timeout {read_timeout};
            client_max_body_size 1m;
        }}
    }}
}}
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(directory: Path, *, port: int, upstreams: list[int], read_timeout: str = "30s") -> str:
    """The nginx configuration: `upstreams` behind `127.0.0.1:port`, state kept in `directory`.

    A short `read_timeout` makes nginx give up on slow answers and re-send the POST to the next
    replica while the first one is still handling it (the benchmark's forced retries).
    """
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in upstreams)
    user = "user root;\n" if os.geteuid() == 0 else ""
    return _NGINX_CONF.format(
        user=user, dir=directory, servers=servers, port=port, path=WEBHOOK_PATH, read_timeout=read_timeout
    )


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Replica:
    """One `rapport run --webhook` subprocess."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        """Its process id (part of its name in the lease and the claims: `host:pid:suffix`)."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process.poll() is None


@dataclass
class ReplicaCluster:
    """nginx on `port` in front of `count` replicas on one database.

    Args:
        database_url: Where every replica logs and claims.
        api_base_url: The (local) Bot API's base URL.
        api_file_url: Its file URL.
        token: The bot token.
        workdir: Where the nginx state, the replicas' data and their logs go.
        nlu_model_dir: A trained NLU model shared by the replicas (read only).
        env: More settings for every replica (e.g. `RAPPORT_SCHEDULER_LEASE_S`).
    """

    database_url: str
    api_base_url: str
    api_file_url: str
    token: str
    workdir: Path
    nlu_model_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    replicas: list[Replica] = field(default_factory=list)
    read_timeout: str = "30s"
    takeover_s: float | None = None
    _nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The webhook URL every replica registers: nginx's."""
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def start_nginx(self, upstreams: list[int]) -> None:
        """Write the configuration and start nginx in the foreground (its own process)."""
        if NGINX is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        directory = self.workdir / "nginx"
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "nginx.conf"
        conf.write_text(
            nginx_config(directory, port=self.port, upstreams=upstreams, read_timeout=self.read_timeout)
        )
        self._nginx = subprocess.Popen(
            [NGINX, "-p", str(directory), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(directory / "nginx.out").open("wb"),
        )
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if self._nginx.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(directory / 'nginx.out').read_text()[-500:]}")
            time.sleep(0.05)

    def start(self, count: int, *, timeout: float = 90.0) -> None:
        """Start nginx and `count` replicas; return once every replica accepts connections."""
        ports = [free_port() for _ in range(count)]
        self.start_nginx(ports)
        for index, port in enumerate(ports):
            args = ["--webhook", self.url, "--listen", "127.0.0.1", "--port", str(port)]
            self.replicas.append(self._spawn(index, port, args))
        deadline = time.monotonic() + timeout
        for replica in self.replicas:
            while not _port_open(replica.port):
                if not replica.alive() or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"replica on port {replica.port} did not start: {self.output(replica)}"
                    )
                time.sleep(0.1)

    def start_polling(self) -> Replica:
        """One `rapport run` in long polling (no nginx, no claims): the single-process peer."""
        replica = self._spawn(0, 0, [])
        self.replicas.append(replica)
        return replica

    def _spawn(self, index: int, port: int, args: list[str]) -> Replica:
        data_dir = self.workdir / f"replica-{index}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "TELEGRAM_"))},
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_API_BASE_URL": self.api_base_url,
            "TELEGRAM_API_FILE_URL": self.api_file_url,
            "RAPPORT_DATABASE_URL": self.database_url,
            "RAPPORT_DATA_DIR": str(data_dir),
            "RAPPORT_NLU_MODEL_DIR": str(self.nlu_model_dir),
            "RAPPORT_LOG_LEVEL": "INFO",
            **self.env,
        }
        log = (data_dir / "run.log").open("wb")
        process = subprocess.Popen(
            [*RUN, *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return Replica(port=port, data_dir=data_dir, process=process, log=log)

    def nginx_resends(self) -> int:
        """POSTs nginx gave up waiting on and re-sent to the next replica (its error log says each)."""
        log = self.workdir / "nginx" / "nginx-error.log"
        if not log.exists():
            return 0
        return sum("upstream timed out" in line for line in log.read_text(errors="replace").splitlines())

    def output(self, replica: Replica) -> str:
        """The end of a replica's log."""
        replica.log.flush()
        return (replica.data_dir / "run.log").read_text(errors="replace")[-3000:]

    def holder(self, engine: Engine) -> Replica | None:
        """The replica holding the scheduler lease now, if any."""
        with engine.connect() as connection:
            owner = connection.execute(select(Lease.owner).where(Lease.name == "scheduler")).scalar()
        for replica in self.replicas:
            if owner is not None and f":{replica.pid}:" in owner and replica.alive():
                return replica
        return None

    def watch_takeover(self, engine: Engine, victim: Replica, *, timeout: float = 30.0) -> threading.Thread:
        """Start a thread that sets `takeover_s`: seconds from now until another replica holds the lease."""
        started = time.monotonic()
        self.takeover_s = None

        def watch() -> None:
            while time.monotonic() - started < timeout:
                holder = self.holder(engine)
                if holder is not None and holder is not victim:
                    self.takeover_s = time.monotonic() - started
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=watch, name="lease-watch", daemon=True)
        thread.start()
        return thread

    def kill(self, replica: Replica) -> None:
        """SIGKILL: no shutdown, no flush, no lease given back."""
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(10)

    def stop(self) -> None:
        """SIGTERM every replica still running (a clean stop), then nginx."""
        for replica in self.replicas:
            if replica.alive():
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.process.wait(20)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(5)
            replica.log.close()
        self.replicas = []
        if self._nginx is not None:
            self._nginx.terminate()
            try:
                self._nginx.wait(10)
            except subprocess.TimeoutExpired:
                self._nginx.kill()
            self._nginx = None
