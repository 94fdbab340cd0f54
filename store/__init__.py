"""The one place that talks to the database: settings, models, migrations, event log."""

from __future__ import annotations

from store.db import check_connection, create_db_engine, read_snapshot, safe_url, unit_of_work
from store.errors import BadRow, DatabaseUnavailableError, EventLogBehindError, ImportFileError, StoreError
from store.events import (
    StoredEvent,
    append_events,
    count_events,
    iter_events,
    iter_user_sequences,
    user_events,
)
from store.migrate import upgrade
from store.records import EventRecord, ForgetReport, UserInfo, UserState
from store.settings import Settings, load_settings
from store.transfer import ImportReport, export_events, import_events
from store.users import (
    count_users,
    forget_user,
    get_user,
    mark_blocked,
    set_opted_out,
    upsert_user,
)
from store.writer import EventWriter, forget_stored_user, replay_spool

__all__ = [
    "BadRow",
    "DatabaseUnavailableError",
    "EventLogBehindError",
    "EventRecord",
    "EventWriter",
    "ForgetReport",
    "ImportFileError",
    "ImportReport",
    "Settings",
    "StoreError",
    "StoredEvent",
    "UserInfo",
    "UserState",
    "append_events",
    "check_connection",
    "count_events",
    "count_users",
    "create_db_engine",
    "export_events",
    "forget_stored_user",
    "forget_user",
    "get_user",
    "import_events",
    "iter_events",
    "iter_user_sequences",
    "load_settings",
    "mark_blocked",
    "read_snapshot",
    "replay_spool",
    "safe_url",
    "set_opted_out",
    "unit_of_work",
    "upgrade",
    "upsert_user",
    "user_events",
]
