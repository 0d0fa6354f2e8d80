"""Where a sweep's study lives: the storage URL checked and opened, and the study in it.

    study = open_sweep_study(optuna, sweep, url, name, out)   # SweepError naming the URL if unusable

SQLite (the default `DIR/study.db`) is checked before Optuna touches it: an
in-memory database (`sqlite:///`, `sqlite:///:memory:`) is refused, since neither the
worker processes nor a rerun could see it; so is a database file that holds tables
other than Optuna's (it belongs to something else, and Optuna would add its tables to
it). Two sweeps started at once on a new SQLite file take turns creating it (a lock on
its folder), instead of one failing with "table ... already exists".
"""
from __future__ import annotations

import sqlite3
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import GraphnetError
from ..runs.lock import folder_lock
from ..system.fileio import output_target
from .space import Sweep

NEEDS_OPTUNA = "graphnet sweep needs Optuna: pip install 'graphnet[sweep]'"
STUDY_FILE = "study.db"
HEARTBEAT_SECONDS = 10  # a trial whose worker is killed is marked failed after a few missed beats
OTHER_OPTUNA_TABLES = ("alembic_version",)  # besides those of Optuna's schema: its migrations' record


class SweepError(GraphnetError):
    """A sweep can't run as asked: no Optuna, an unusable storage, a study of another sweep."""


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SweepError(NEEDS_OPTUNA) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # graphnet prints one line per trial itself
    return optuna


def default_storage(out: Path) -> str:
    """The SQLite URL of DIR/study.db (absolute, so workers in any folder find it)."""
    return f"sqlite:///{(out / STUDY_FILE).resolve()}"


def shown_url(url: str) -> str:
    """A storage URL with its password masked, for messages."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: opening it reports that
        return url


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases (and URLs sqlalchemy can't
    parse, or SQLite URIs `file:...`, which are left to the driver). SweepError for an in-memory one."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # opening the storage reports it
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        raise SweepError(f"storage {shown_url(url)}: an in-memory SQLite database can't hold a study (worker "
                         "processes and a rerun would not see it): name a file, e.g. sqlite:///sweeps/study.db, "
                         "or leave --storage out")
    if parsed.query.get("uri") or database.startswith("file:"):
        return None
    return Path(database)


def check_sqlite_file(url: str) -> None:
    """SweepError when a SQLite URL names a device or FIFO (SQLite would write a journal beside
    it); an OSError naming the path for a folder."""
    path = sqlite_file(url)
    if path is not None and output_target(path).how == "stream":
        raise SweepError(f"storage {shown_url(url)}: {path} is a device or FIFO, not a database file")


def check_sqlite_tables(url: str, optuna: Any) -> None:
    """SweepError if the SQLite file of `url` exists and holds tables that are not Optuna's."""
    path = sqlite_file(url)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.Error as error:
        raise SweepError(f"storage {shown_url(url)}: {error}") from None
    known = set(_optuna_tables(optuna)) | set(OTHER_OPTUNA_TABLES)
    others = sorted(name for name in tables if name not in known and not name.startswith("sqlite_"))
    if others:
        listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise SweepError(f"storage {shown_url(url)}: the database holds other tables ({listed}), not only an "
                         "Optuna study's: give a database of its own for the sweep")


def _optuna_tables(optuna: Any) -> list[str]:
    """The tables of Optuna's RDB schema."""
    from optuna.storages._rdb import models  # the schema is only declared there

    return list(models.BaseModel.metadata.tables)


@contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """For the block, hold a lock on the folder of a SQLite database file (nothing for other
    databases), so that two sweeps don't create the same new database at once."""
    path = sqlite_file(url)
    folder = path.resolve().parent if path is not None else None
    if folder is None or not folder.is_dir():
        yield
        return
    with folder_lock(folder):
        yield


def open_storage(optuna: Any, url: str) -> Any:
    """An Optuna RDB storage (SQLite waits for a busy database instead of failing); SweepError
    naming the URL if it can't be opened, is in memory, or is a SQLite file of something else."""
    check_sqlite_tables(url, optuna)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=HEARTBEAT_SECONDS)
    except Exception as error:  # sqlalchemy's and the database drivers' errors, a missing driver
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SweepError(f"storage {shown_url(url)}: {reason}") from None


def _sweep_signature(sweep: Sweep) -> dict[str, Any]:
    """What a resumed study must share with the SWEEP.json that continues it."""
    return {"space": {path: dist.model_dump(by_alias=True, exclude_defaults=True)
                      for path, dist in sweep.spec.space.items()},
            "metric": sweep.spec.metric, "direction": sweep.direction}


def open_study(optuna: Any, sweep: Sweep, storage: Any, url: str, name: str, out: Path) -> Any:
    """The study `name` in `storage`, created if new. SweepError if it was made by another
    sweep, or if a new study would reuse `out`'s trial folders."""
    signature = _sweep_signature(sweep)
    exists = name in optuna.study.get_all_study_names(storage)
    if not exists:
        stale = sorted(path.name for path in out.glob("trial-*"))
        if stale:
            raise SweepError(f"{out}: holds trial folders ({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''}) "
                             f"but storage {shown_url(url)} has no study '{name}': give a new --out, or the "
                             f"--storage that holds their study")
    study = optuna.create_study(study_name=name, storage=storage, direction=sweep.direction, load_if_exists=True)
    saved = study.user_attrs.get("sweep")
    if saved is None:
        study.set_user_attr("sweep", signature)
    elif saved != signature:
        differs = ", ".join(key for key in signature if saved.get(key) != signature[key])
        raise SweepError(f"study '{name}' in {shown_url(url)} was made by a sweep with another {differs}: "
                         f"set a new \"study_name\" in the sweep file, or give a new --out")
    return study


def open_sweep_study(optuna: Any, sweep: Sweep, url: str, name: str, out: Path) -> Any:
    """The study `name` of `sweep` in the storage at `url` (see `open_study`), the storage
    checked and, for SQLite, created by one sweep at a time."""
    with storage_lock(url):
        return open_study(optuna, sweep, open_storage(optuna, url), url, name, out)
