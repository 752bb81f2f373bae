"""Schema migrations with Alembic, run on a connection the caller owns.

The app upgrades in place at start (an existing data dir keeps its data); operators can also
run ``diemcau db upgrade``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade_to_head(connection: Connection) -> list[str]:
    before = current_revision(connection)
    command.upgrade(alembic_config(connection), "head")
    script = ScriptDirectory.from_config(alembic_config())
    applied = [rev.revision for rev in script.iterate_revisions("head", before or "base")]
    return list(reversed([r for r in applied if r != before]))
