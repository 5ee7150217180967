"""A SQL query through SQLAlchemy (any installed dialect), a chunk of rows at a time.

A plain path is a SQLite file, opened read-only (SQLite would silently create a missing file).
Errors name the database without its password.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from klaviyo_tui.input.sources.common import SourceError, check_width, numbered, select, short
from klaviyo_tui.input.sources.files import open_source
from klaviyo_tui.store.config import Segment

#: Driver modules whose PyPI package has another name (SQLAlchemy names the module it lacks).
_DRIVER_PACKAGES = {
    "MySQLdb": "mysqlclient",
    "psycopg2": "psycopg2-binary",
    "pymysql": "PyMySQL",
    "cx_Oracle": "cx-Oracle",
    "pymssql": "pymssql",
}


def safe_url(url: str) -> str:
    """A URL for messages, password masked."""
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://…"


def _sql_url(source: str) -> str:
    if "://" in source:
        return source
    path = Path(source).expanduser()
    with open_source(path) as src:  # a regular file, never a FIFO
        if src.reader().read(16) != b"SQLite format 3\x00":
            raise SourceError(f"{path} is not a SQLite database file.")
    return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"


def sql_chunks(
    segment: Segment, columns: list[str] | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    import sqlalchemy as sa
    from sqlalchemy import exc as saexc

    where = f"Segment {segment.name!r}"
    url = _sql_url(segment.source)
    try:
        engine = sa.create_engine(url)
    except saexc.NoSuchModuleError as exc:
        raise SourceError(
            f"{where}: no SQLAlchemy dialect for {safe_url(url)} ({short(exc)}). "
            "Install the database driver package."
        ) from None
    except ModuleNotFoundError as exc:
        package = _DRIVER_PACKAGES.get(exc.name or "", exc.name)
        raise SourceError(
            f"{where}: the database driver {exc.name!r} is not installed; "
            f"install it (pip install {package}) in klaviyo-tui's environment."
        ) from None
    except saexc.ArgumentError as exc:
        raise SourceError(f"{where}: invalid database URL: {short(exc)}.") from None
    start = 0
    try:
        with engine.connect() as conn:
            for df in pd.read_sql(sa.text(segment.query or ""), conn, chunksize=chunk_rows):
                if start == 0:
                    check_width(df.shape[1], f"{where}: the query result")
                df = select(df, columns, where)
                yield numbered(df, start)
                start += len(df)
    except SourceError:
        raise
    except (saexc.DBAPIError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
        orig = getattr(cause, "orig", None)
        detail = short(orig) if orig is not None else short(cause or exc)
        raise SourceError(
            f"{where}: the database refused the query: {detail}. "
            "Check the query, the table names and the connection."
        ) from None
    except saexc.SQLAlchemyError as exc:
        raise SourceError(f"{where}: query failed: {short(exc)}.") from None
    finally:
        engine.dispose()
