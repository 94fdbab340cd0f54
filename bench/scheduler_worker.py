"""One scheduler process for `bench.bench_scheduler`: sends until the campaign is done, then reports.

Usage: python -m bench.scheduler_worker DB_URL BASE_URL TOKEN RATE LANES CAMPAIGN_ID TIMEOUT_S
Prints one JSON line: outcomes, rows found ambiguous on start, and the wall time spent sending.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from bot.delivery import TelegramSender
from scheduler.engine import EngineConfig
from scheduler.service import SchedulerService
from store import create_db_engine, load_settings
from store.campaigns import next_due_at


async def work(
    db_url: str, base_url: str, token: str, rate: float, lanes: int, campaign_id: int, limit: float
) -> None:
    """Run a scheduler service (lease, recovery, delivery loop) until the campaign has nothing left."""
    settings = load_settings(
        database_url=db_url, send_rate_per_s=rate, telegram_bot_token=token, telegram_api_base_url=base_url
    )
    engine = create_db_engine(db_url)
    loop = asyncio.get_running_loop()
    async with TelegramSender.from_settings(settings) as sender:
        config = EngineConfig(rate_per_s=rate, lanes=lanes, max_retries=settings.send_max_retries)
        service = SchedulerService(
            engine, settings, sender, owner=f"bench-{os.getpid()}", lease_ttl_s=1.5, poll_s=0.05,
            use_apscheduler=False, config=config,
        )  # fmt: skip
        await service.start()
        active = await service.wait_active(10.0)
        started = time.time()
        deadline = loop.time() + limit
        while active and loop.time() < deadline:
            # A cheap query (not the campaign report, which reads every row): nothing left to send.
            if await asyncio.to_thread(next_due_at, engine) is None:
                break
            await asyncio.sleep(0.2)
        await service.stop()
    engine.dispose()
    report = {
        "active": active,
        "outcomes": dict(service.delivery.stats.outcomes),
        "ambiguous": [a.user_id for a in service.ambiguous],
        "seconds": time.time() - started,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    db, base, tok, rate, lanes, cid, limit = sys.argv[1:8]
    asyncio.run(work(db, base, tok, float(rate), int(lanes), int(cid), float(limit)))
