"""A `rapport run`-like scheduler process for the multi-process tests: sends until the campaign is done.

Usage: python -m tests.scheduler.scheduler_process DB_URL BASE_URL TOKEN OWNER RATE CAMPAIGN_ID TIMEOUT_S
Prints one JSON line with what this process did.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.delivery import TelegramSender
from scheduler.service import SchedulerService
from store import create_db_engine, load_settings
from store.campaigns import next_due_at


async def main(
    db_url: str, base_url: str, token: str, owner: str, rate: float, campaign_id: int, timeout_s: float
) -> None:
    settings = load_settings(
        database_url=db_url,
        send_rate_per_s=rate,
        per_chat_rate_per_s=rate,
        telegram_bot_token=token,
        telegram_api_base_url=base_url,
    )
    engine = create_db_engine(db_url)
    loop = asyncio.get_running_loop()
    async with TelegramSender.from_settings(settings) as sender:
        service = SchedulerService(engine, settings, sender, owner=owner, lease_ttl_s=1.5, poll_s=0.05)
        await service.start()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            # A cheap query (not the campaign report, which reads every row): nothing left to send.
            if await asyncio.to_thread(next_due_at, engine) is None:
                break
            await asyncio.sleep(0.1)
        await service.stop()
    engine.dispose()
    print(json.dumps({"owner": owner, "ambiguous": [a.user_id for a in service.ambiguous],
                      "sent": service.delivery.stats.outcomes["sent"]}))  # fmt: skip


if __name__ == "__main__":
    db, base, tok, who, rate, cid, timeout = sys.argv[1:8]
    asyncio.run(main(db, base, tok, who, float(rate), int(cid), float(timeout)))
