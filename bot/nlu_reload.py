"""Picking up a retrained NLU model while the bot runs.

The dashboard's "Retrain NLU" saves an activated model over the bot's model directory, and may add
knowledge-base topics (``<data_dir>/nlu/topics.yml``). The bot checks both files' modification
times every ``interval_s`` seconds; when either changed it loads the model and the knowledge base in
a worker thread and swaps them in between two updates. A model that fails to load is logged and the
running one kept, so a half-written directory never takes the bot down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from bot.errors import KnowledgeBaseError
from bot.knowledge import KnowledgeBase, load_knowledge_base, with_topics
from bot.services import BotServices
from nlu import NLUError, NLUModel, RemoteRasaParser, load_model
from nlu.storage import METADATA_FILE

logger = logging.getLogger(__name__)

RELOAD_INTERVAL_S = 30.0
_RETIRE_AFTER_S = 5.0  # parses already handed to the old model finish before its thread stops


def _stamp(*paths: Path) -> tuple[int, ...]:
    return tuple(path.stat().st_mtime_ns if path.exists() else 0 for path in paths)


class ModelReloader:
    """Swaps in the model and knowledge base on disk when they change (see the module docstring)."""

    def __init__(
        self,
        services: BotServices,
        *,
        model_dir: Path,
        topics_path: Path,
        knowledge_base: Path | None,
        interval_s: float = RELOAD_INTERVAL_S,
    ) -> None:
        self.services = services
        self.model_dir = model_dir
        self.topics_path = topics_path
        self.knowledge_base = knowledge_base
        self.interval_s = interval_s
        self._seen = _stamp(model_dir / METADATA_FILE, topics_path)
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0

    def _load(self) -> tuple[NLUModel, KnowledgeBase]:
        model = load_model(self.model_dir)
        knowledge = with_topics(load_knowledge_base(self.knowledge_base), self.topics_path)
        return model, knowledge

    async def check(self) -> bool:
        """Reload when the files changed since the last look; whether a new model was swapped in."""
        stamp = _stamp(self.model_dir / METADATA_FILE, self.topics_path)
        if stamp == self._seen:
            return False
        try:
            model, knowledge = await asyncio.to_thread(self._load)
        except (NLUError, KnowledgeBaseError, OSError) as exc:
            logger.warning("kept the running NLU model: the new one cannot be loaded (%s)", exc)
            self._seen = stamp
            return False
        self._seen = stamp
        understander = self.services.understander
        old = understander.parser
        if isinstance(old, RemoteRasaParser):
            retired, old.fallback = old.fallback, model
        else:
            retired, understander.parser = old, model
        self.services.knowledge = knowledge
        self.reloads += 1
        logger.info(
            "reloaded the NLU model (%d intents, data %s) and the knowledge base (%d topics)",
            len(model.labels), str(model.metadata.get("data_hash", ""))[:12], len(knowledge.topics),
        )  # fmt: skip
        if isinstance(retired, NLUModel):
            await asyncio.sleep(_RETIRE_AFTER_S)
            await asyncio.to_thread(retired.close)
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # the watcher must outlive any one failed look
                logger.exception("checking for a new NLU model failed")

    async def start(self, _: object = None) -> None:
        """Start watching (a startup hook)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="nlu-reload")

    async def stop(self, _: object = None) -> None:
        """Stop watching (a shutdown hook)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
