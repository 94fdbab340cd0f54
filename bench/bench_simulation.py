"""Simulator throughput: actions generated per second, and bulk-written events per second.

Usage: python -m bench.bench_simulation [--users 1000000] [--days 20] [--write-users 100000]
       [--backend sqlite|postgresql]

Generation runs over the whole population (nothing is kept in memory); the store write runs
over the first `--write-users` users (0 skips it), through `demo.simulation.write_history`,
which is what `rapport demo` uses for its history.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from demo.simulation import iter_actions, make_population, write_history
from store import create_db_engine, upgrade

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--write-users", type=int, default=100_000)
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    population = make_population(args.users, days=args.days, seed=args.seed)
    made = time.perf_counter() - started
    started = time.perf_counter()
    actions = sum(len(batch) for batch in iter_actions(population, start=START))
    generated = time.perf_counter() - started
    print(
        f"population: {args.users:,} users in {made:.1f} s; generation: {actions:,} actions over "
        f"{args.days} days in {generated:.1f} s ({actions / generated:,.0f} actions/s)"
    )
    if args.write_users <= 0:
        return
    part = make_population(args.write_users, days=args.days, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(POSTGRES_URL)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        engine = create_db_engine(url)
        try:
            upgrade(engine)
            started = time.perf_counter()
            report = write_history(engine, part, start=START, profiles=False)
            written = time.perf_counter() - started
        finally:
            engine.dispose()
            if schema is not None:
                admin = create_engine(POSTGRES_URL)
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(
        f"[{args.backend}] bulk write: {report.users:,} users, {report.events:,} events in {written:.1f} s "
        f"({report.events / written:,.0f} events/s, generation included)"
    )


if __name__ == "__main__":
    main()
