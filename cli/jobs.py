"""`rapport jobs list|run NAME`: see the scheduler's jobs and run any of them now."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from cli.common import engine_scope, fail, get_settings
from scheduler import JOBS, JobContext, SchedulerError, SystemClock, run_job
from scheduler.service import LEASE_NAME, SchedulerService
from store import Settings
from store.leases import lease_holder

app = typer.Typer(help="The scheduler's jobs: list them, run one now.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)

SEND_IDLE_S = 60.0  # stop once nothing is due within this long (deferred rows wait for `rapport run`)


def _schedule_text(schedule: str, settings: Settings) -> str:
    if schedule in ("hourly", "minutely"):
        return "every minute" if schedule == "minutely" else "hourly"
    _, _, field_name = schedule.partition(":")
    return f"daily {getattr(settings, field_name)} {settings.scheduler_timezone}"


def _nlu_labels(settings: Settings) -> frozenset[str] | None:
    """The saved local NLU model's intents (and its fallback), read from its metadata; None without one."""
    from nlu import FALLBACK_INTENT, ModelLoadError
    from nlu.storage import read_metadata

    try:
        labels = read_metadata(settings.resolved_nlu_model_dir).get("labels")
    except ModelLoadError:  # includes a model of another format version
        return None
    return frozenset([*labels, FALLBACK_INTENT]) if isinstance(labels, list) else None


@app.command("list")
def list_jobs(ctx: typer.Context) -> None:
    """Every job with its schedule."""
    settings = get_settings(ctx)
    table = Table("job", "schedule", "what it does")
    for spec in JOBS.values():
        table.add_row(spec.name, _schedule_text(spec.schedule, settings), spec.description)
    table.add_row(
        "deliveries", "continuous", "Send every due delivery now (what `rapport run` does all along)."
    )
    out.print(table)


async def send_due(settings: Settings, engine: Engine) -> str:
    """Send due deliveries from this process, if no running scheduler holds the lease.

    Uses the same `SchedulerService` as `rapport run` (lease, fencing, crash recovery) without
    APScheduler, and a `TelegramSender` built from the settings.
    """
    clock = SystemClock()
    holder = await asyncio.to_thread(lease_holder, engine, LEASE_NAME, now=clock.now())
    if holder is not None:
        return f"the running scheduler ({holder.owner}) sends the deliveries"
    if not settings.telegram_bot_token:
        return "TELEGRAM_BOT_TOKEN is not set: deliveries stay pending until `rapport run` starts"
    from bot.delivery import TelegramSender

    async with TelegramSender.from_settings(settings) as sender:
        service = SchedulerService(engine, settings, sender, clock=clock, use_apscheduler=False, poll_s=0.5)
        await service.start()
        try:
            if not await service.wait_active(5.0):
                return "another process took the scheduler lease: it sends the deliveries"
            while True:
                await asyncio.sleep(1.0)
                wait = await service.delivery.seconds_until_due()
                if wait is None or wait > SEND_IDLE_S:
                    break
        finally:
            await service.stop()
    outcomes = service.delivery.stats.outcomes
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "nothing was due"
    if service.ambiguous:
        summary += f"; {len(service.ambiguous)} delivery(ies) of a crashed sender marked ambiguous"
    left = timedelta(seconds=wait) if wait is not None else None
    return summary + (f"; the next deferred delivery is due in {left}" if left is not None else "")


@app.command("run")
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Job name (see `rapport jobs list`), or `deliveries`."),
    send: bool = typer.Option(True, "--send/--no-send", help="Then send due deliveries from this process."),
) -> None:
    """Run a job now instead of waiting for its schedule."""
    settings = get_settings(ctx)
    if name != "deliveries" and name not in JOBS:
        fail(f"unknown job {name!r}; known jobs: {', '.join([*sorted(JOBS), 'deliveries'])}")
    with engine_scope(settings) as engine:
        try:
            if name != "deliveries":
                context = JobContext(engine, settings, SystemClock(), _nlu_labels(settings))
                result = asyncio.run(run_job(name, context))
                out.print(f"{name}: {result}")
            if send and (name in ("deliveries", "reengagement", "experiments")):
                out.print(f"deliveries: {asyncio.run(send_due(settings, engine))}")
        except (SchedulerError, ValueError, OSError) as exc:
            fail(f"{name}: {exc}")
