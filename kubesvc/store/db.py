"""The SQLite object store: the only code that speaks SQL.

Rules kept here:
- One file, WAL mode, a busy timeout: many processes read and write at once.
- Every write is one short ``BEGIN IMMEDIATE`` transaction (a deferred BEGIN that reads first could not
  wait for the write lock). Object rows, the revision counter, the change log and allocations commit
  together, so a process killed mid-write leaves the store as it was before that write.
- One store-wide revision counter (like etcd's): every object write takes the next revision and that is
  the object's resourceVersion. The change log keeps (revision, type, object) so readers can ask
  "what changed since N" cheaply; deletes are logged too. Old log rows are compacted; asking for a
  compacted revision raises ``Gone``.
- sqlite-utils creates the schema (first use only); hot paths use sqlite3 directly because importing
  sqlite-utils costs ~0.1 s of CLI start-up.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubesvc.api.kinds import BY_KIND
from kubesvc.config import DEFAULTS, Settings
from kubesvc.errors import AlreadyExists, ClientError, Conflict, KubesvcError, NotFound, StoreUnavailable

try:  # orjson decodes stored objects ~3x faster than json: `get` over 10,000 Services stays well under 0.5 s
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _loads = json.loads  # type: ignore[assignment]

# 2: the service-name label index on EndpointSlices; 3: the selector index of Services (each added to an older store
# when it is opened, by ``Store._migrate``)
SCHEMA_VERSION = 3
CHANGE_LOG_KEEP = 50_000  # revisions kept in the change log before compaction
BUSY_TIMEOUT_MS = 60_000
EVENT_TTL_SECONDS = 3600  # Events older than this go when a new one is written (kube-apiserver's --event-ttl, 1h)
# Labels with an index (kind -> label): ``list_labelled`` finds their objects without reading the others. The
# EndpointSlice controllers look up a Service's slices on every Service/Endpoints/Pod write; a scan of the namespace's
# slices made each create cost O(slices) (10,000 mirrored Endpoints: minutes to create, each slower than the last).
INDEXED_LABELS = {("EndpointSlice", "kubernetes.io/service-name"): "objects_slice_service"}


def _label_expr(label: str) -> str:
    return f"json_extract(body, '$.metadata.labels.\"{label}\"')"


def _index_sql(kind: str, label: str, index: str) -> str:
    return f"CREATE INDEX IF NOT EXISTS {index} ON objects(namespace, {_label_expr(label)}) WHERE kind = '{kind}'"


# Kinds whose equality selector (a map of label -> value) is indexed (kind -> JSON path): ``list_selecting`` finds the
# objects that select a set of labels without reading the others. The endpoints controller asks on every Pod write
# "which Services select this Pod"; reading and decoding every Service of the namespace made a Pod create cost
# O(Services) (10,000 Services: ~0.5 s each). The table ``selector_terms`` holds one row per (object, selector key):
# the key, the value (NULL when not a string: such a term matches no label) and the selector's number of keys; SQLite
# triggers on ``objects`` keep it in step in the writing transaction, whoever writes (also a kubesvc that predates
# the table). An object selects labels when every term of its selector is among them: found by the labels' (key,
# value) pairs through an index, grouped by object, kept when all its terms were found. An empty or missing selector
# has no terms and selects nothing (the endpoints controller leaves such a Service alone).
SELECTOR_INDEXED = {"Service": "$.spec.selector"}


def _selector_terms_select(kind: str, path: str, row: str) -> str:
    """The selector_terms rows of the object ``row`` (``NEW`` in a trigger, ``objects`` in the migration)."""
    sel = f"json_each({row}.body, '{path}')"
    source = f"{sel} AS t" if row == "NEW" else f"{row}, {sel} AS t"
    return (f"SELECT {row}.kind, {row}.namespace, {row}.name, t.key, CASE WHEN t.type = 'text' THEN t.atom END,"
            f" (SELECT count(*) FROM {sel}) FROM {source}"
            f" WHERE {row}.kind = '{kind}' AND json_type({row}.body, '{path}') = 'object'")


def _selector_schema_sql() -> list[str]:
    out = ["CREATE TABLE IF NOT EXISTS selector_terms (kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
           " key TEXT NOT NULL, value TEXT, terms INTEGER NOT NULL)",
           "CREATE INDEX IF NOT EXISTS selector_terms_label ON selector_terms(kind, namespace, key, value)",
           "CREATE INDEX IF NOT EXISTS selector_terms_object ON selector_terms(kind, namespace, name)"]
    for kind, path in SELECTOR_INDEXED.items():
        low = kind.lower()
        forget = "DELETE FROM selector_terms WHERE kind = OLD.kind AND namespace = OLD.namespace AND name = OLD.name;"
        out += [f"CREATE TRIGGER IF NOT EXISTS selector_terms_{low}_insert AFTER INSERT ON objects"
                f" WHEN NEW.kind = '{kind}' BEGIN INSERT INTO selector_terms {_selector_terms_select(kind, path, 'NEW')}; END",
                f"CREATE TRIGGER IF NOT EXISTS selector_terms_{low}_update AFTER UPDATE ON objects"
                f" WHEN OLD.kind = '{kind}' OR NEW.kind = '{kind}' BEGIN {forget}"
                f" INSERT INTO selector_terms {_selector_terms_select(kind, path, 'NEW')}; END",
                f"CREATE TRIGGER IF NOT EXISTS selector_terms_{low}_delete AFTER DELETE ON objects"
                f" WHEN OLD.kind = '{kind}' BEGIN {forget} END"]
    return out


class Gone(KubesvcError):
    reason = "Expired"
    code = 410


@dataclass(frozen=True)
class Change:
    revision: int
    type: str  # ADDED | MODIFIED | DELETED
    kind: str
    namespace: str
    name: str
    object: dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Store:
    """A handle on one store file. Cheap to open; one sqlite3 connection per handle."""

    def __init__(self, path: str) -> None:
        self.path = path
        fresh = not os.path.exists(path)
        if fresh:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Create with 0600 before SQLite opens it.
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        self._schema_version = 0
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            has_schema = self._has_schema()
        except sqlite3.OperationalError:
            if not self._reopen_read_only():
                raise
            has_schema = self._has_schema()
        if not has_schema:
            self._create_schema_once()
        elif self._schema_version < SCHEMA_VERSION:
            self._migrate()
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._settings: Settings | None = None

    def _reopen_read_only(self) -> bool:
        """A WAL store in a directory nobody can write (a read-only mount) cannot make its -wal/-shm files:
        open it read-only and immutable so reads still work and writes fail with a clear error. Only when
        no -wal file exists, i.e. no writer can be active on it."""
        directory = os.path.dirname(os.path.abspath(self.path))
        if os.access(directory, os.W_OK) or os.path.exists(self.path + "-wal"):
            return False
        from urllib.parse import quote

        self.conn.close()
        uri = f"file:{quote(os.path.abspath(self.path))}?mode=ro&immutable=1"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return True

    @classmethod
    def open(cls, path: str) -> Store:
        """Open for a command: any failure (not a database, unreadable, no space) is one ClientError."""
        try:
            return cls(path)
        except OSError as e:
            raise ClientError(f'cannot open the store "{path}": {e.strerror or e}') from None
        except sqlite3.Error as e:
            raise ClientError(f'cannot open the store "{path}": {e}') from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ schema

    def _has_schema(self) -> bool:
        row = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if row is None:
            return False
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        self._schema_version = int(row[0]) if row is not None else 0
        return row is not None

    def _migrate(self) -> None:
        """An older store: add what later versions create, in one transaction that re-reads the version first (so
        concurrent openers are fine). A store that cannot be written (read-only) is left as it is: every query still
        works, only without the indexes (``list_selecting`` then reads every object of the kind)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row is not None else 0
            if version < 2:
                for (kind, label), index in INDEXED_LABELS.items():
                    self.conn.execute(_index_sql(kind, label, index))
            if version < 3:
                for sql in _selector_schema_sql():
                    self.conn.execute(sql)
                self.conn.execute("DELETE FROM selector_terms")
                for kind, path in SELECTOR_INDEXED.items():
                    self.conn.execute(f"INSERT INTO selector_terms {_selector_terms_select(kind, path, 'objects')}")
            self.conn.execute("UPDATE meta SET value=? WHERE key='schema_version' AND CAST(value AS INTEGER) < ?",
                              (str(SCHEMA_VERSION), SCHEMA_VERSION))
            self.conn.execute("COMMIT")
            self._schema_version = max(version, SCHEMA_VERSION)
        except sqlite3.OperationalError:
            self.conn.execute("ROLLBACK")

    def _create_schema_once(self) -> None:
        """First use: many processes may open a new store at once. An flock on the store's directory lets
        one create the schema while the others wait, then find it there. (Not on the database file itself:
        closing a second descriptor of that file would drop SQLite's own POSIX locks on it.)"""
        import fcntl

        fd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self._has_schema():
                self._create_schema()
        finally:
            os.close(fd)  # also releases the flock

    def _set_wal(self) -> None:
        """Switching to WAL needs a moment with no other reader; retry briefly instead of failing."""
        deadline = time.monotonic() + 30
        while True:
            try:
                mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError:
                mode = ""
            if str(mode).lower() == "wal" or time.monotonic() > deadline:
                return
            time.sleep(0.02)

    def _create_schema(self) -> None:
        import sqlite_utils

        self._set_wal()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone():
                if self.conn.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone():
                    self.conn.execute("COMMIT")
                    return
            db = sqlite_utils.Database(self.conn)
            db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
            db.table("objects").create(
                {"kind": str, "namespace": str, "name": str, "uid": str, "revision": int, "body": str},
                pk=("kind", "namespace", "name"),
                if_not_exists=True,
            )
            db.table("changes").create(
                {"revision": int, "type": str, "kind": str, "namespace": str, "name": str, "body": str},
                pk="revision",
                if_not_exists=True,
            )
            db.table("allocations").create(
                {"pool": str, "value": str, "owner": str}, pk=("pool", "value"), if_not_exists=True
            )
            db.table("allocations").create_index(["owner"], if_not_exists=True)
            for (kind, label), index in INDEXED_LABELS.items():
                self.conn.execute(_index_sql(kind, label, index))
            for sql in _selector_schema_sql():
                self.conn.execute(sql)
            rows = [{"key": "revision", "value": "0"}, {"key": "compacted", "value": "0"}]
            rows += [{"key": f"setting.{k}", "value": v} for k, v in DEFAULTS.items()]
            db.table("meta").insert_all(rows, ignore=True)
            txn = Txn(self)
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                if txn.get("Namespace", "", ns) is None:
                    txn.create(_namespace(ns))
            from kubesvc.api import machine  # the Node that is this machine, default ServiceAccounts

            for obj in machine.seed_objects(now_rfc3339()):
                meta = obj["metadata"]
                if txn.get(obj["kind"], meta.get("namespace", ""), meta["name"]) is None:
                    txn.create(obj)
            db.table("meta").insert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, replace=True)
            self.conn.execute("COMMIT")
            self._schema_version = SCHEMA_VERSION
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------------------ reads

    def settings(self) -> Settings:
        if self._settings is None:
            rows = self.conn.execute("SELECT key, value FROM meta WHERE key LIKE 'setting.%'").fetchall()
            self._settings = Settings.from_dict({k[len("setting.") :]: v for k, v in rows})
        return self._settings

    def revision(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
        return int(row[0])

    def data_version(self) -> int:
        """Changes whenever another connection commits: a very cheap 'anything new?' probe."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return _get(self.conn, kind, namespace, name)

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return _list(self.conn, kind, namespace)

    def list_labelled(self, kind: str, namespace: str, label: str, value: str) -> builtins.list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` whose ``label`` is ``value``, by name (``INDEXED_LABELS`` only)."""
        return _list_labelled(self.conn, kind, namespace, label, value)

    def list_selecting(self, kind: str, namespace: str, labels: dict[str, str] | None) -> builtins.list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` whose selector selects ``labels`` (every key of a non-empty
        selector present with the same value), by name; only those are read (``SELECTOR_INDEXED`` kinds)."""
        return _list_selecting(self.conn, self._schema_version >= 3, kind, namespace, labels)

    def list_with_revision(self, kinds: tuple[str, ...]) -> tuple[int, dict[str, builtins.list[dict[str, Any]]]]:
        """A consistent snapshot of several kinds (all namespaces) and the revision it reflects."""
        self.conn.execute("BEGIN")
        try:
            rev = self.revision()
            out = {k: _list(self.conn, k, None) for k in kinds}
        finally:
            self.conn.execute("COMMIT")
        return rev, out

    def changes(self, since: int, kinds: tuple[str, ...] | None = None) -> builtins.list[Change]:
        """Every change with revision > since, oldest first. Raises Gone when since was compacted."""
        compacted = int(self.conn.execute("SELECT value FROM meta WHERE key='compacted'").fetchone()[0])
        if since < compacted:
            raise Gone(f"too old resource version: {since} ({compacted})")
        rows = self.conn.execute(
            "SELECT revision, type, kind, namespace, name, body FROM changes WHERE revision > ? ORDER BY revision",
            (since,),
        ).fetchall()
        out = [Change(r, t, k, ns, n, _loads(b)) for r, t, k, ns, n, b in rows]
        if kinds is not None:
            out = [c for c in out if c.kind in kinds]
        return out

    def latest_changes(self, since: int, kinds: tuple[str, ...]) -> tuple[int, builtins.list[Change]]:
        """(the store's revision, the newest change of each object of ``kinds`` changed after ``since``), read in one
        consistent snapshot, oldest first; only those bodies are decoded. The incremental reader's query: an object
        changed many times since counts once, with its state now (a DELETED change carries its last body). Raises
        Gone when ``since`` was compacted."""
        marks = ", ".join("?" for _ in kinds)
        self.conn.execute("BEGIN")
        try:
            compacted = int(self.conn.execute("SELECT value FROM meta WHERE key='compacted'").fetchone()[0])
            if since < compacted:
                raise Gone(f"too old resource version: {since} ({compacted})")
            rev = self.revision()
            rows = self.conn.execute(
                f"SELECT revision, type, kind, namespace, name, body FROM changes WHERE revision > ? AND kind IN ({marks})"
                " ORDER BY revision", (since, *kinds)).fetchall()
        finally:
            self.conn.execute("COMMIT")
        last: dict[tuple[str, str, str], tuple[int, str, str, str, str, str]] = {}
        for row in rows:
            key = (row[2], row[3], row[4])
            last.pop(key, None)  # re-inserted: the dict stays in revision order
            last[key] = row
        return rev, [Change(r, t, k, ns, n, _loads(b)) for r, t, k, ns, n, b in last.values()]

    def wait_for_change(self, since: int, timeout: float, interval: float = 0.01) -> int:
        """Block until the revision moves past ``since`` or ``timeout`` passes; returns the revision."""
        deadline = time.monotonic() + timeout
        seen = self.data_version()
        rev = self.revision()
        while rev <= since and time.monotonic() < deadline:
            time.sleep(interval)
            dv = self.data_version()
            if dv != seen:
                seen = dv
                rev = self.revision()
        return rev

    # ------------------------------------------------------------------------------ writes

    @contextmanager
    def write(self) -> Iterator[Txn]:
        """One BEGIN IMMEDIATE transaction; commits on success, rolls back on any exception."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise self._unavailable(e) from None
        try:
            yield Txn(self)
        except BaseException as e:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # never hide the original error
            if isinstance(e, sqlite3.OperationalError):
                raise self._unavailable(e) from None
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as e:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise self._unavailable(e) from None

    def _unavailable(self, e: sqlite3.OperationalError) -> Exception:
        """A write the store cannot take, in words a user can act on; anything else stays as it was."""
        text = str(e)
        low = text.lower()
        if "disk is full" in low:
            why = "the store's disk is full; free some space and retry"
        elif "readonly" in low or "read-only" in low:
            why = "the store is read-only (its file or directory cannot be written)"
        elif "unable to open" in low or "disk i/o" in low:
            why = "the store's file or directory cannot be written"
        elif "locked" in low or "busy" in low:
            why = f"the store stayed locked by another writer for {BUSY_TIMEOUT_MS // 1000}s"
        else:
            return e
        return StoreUnavailable(f'cannot write to the store "{self.path}": {why} ({text}); nothing was written')

    def compact(self, keep: int = CHANGE_LOG_KEEP) -> int:
        """Drop change-log rows older than the newest ``keep`` revisions (writes also do this every 1,000
        revisions). Readers asking for a dropped revision get Gone and relist. Returns the new floor."""
        with self.write() as txn:
            floor = max(0, self.revision() - keep)
            txn.conn.execute("DELETE FROM changes WHERE revision <= ?", (floor,))
            txn.conn.execute("UPDATE meta SET value=? WHERE key='compacted' AND CAST(value AS INTEGER) < ?", (str(floor), floor))
        return floor

    def set_settings(self, settings: Settings, *, before_first_use: bool = False) -> bool:
        """Store the cluster settings. With ``before_first_use``, only while nothing is allocated (the ranges
        cannot move under allocated addresses), checked in the same transaction: False and nothing written
        when something is."""
        with self.write() as txn:
            if before_first_use and txn.conn.execute("SELECT 1 FROM allocations LIMIT 1").fetchone() is not None:
                return False
            for k, v in settings.as_dict().items():
                txn.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (f"setting.{k}", v))
        self._settings = settings
        return True


def _namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _get(conn: sqlite3.Connection, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, namespace, name)
    ).fetchone()
    return _loads(row[0]) if row else None


def _list(conn: sqlite3.Connection, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    if namespace is None:
        rows = conn.execute("SELECT body FROM objects WHERE kind=? ORDER BY namespace, name", (kind,)).fetchall()
    else:
        rows = conn.execute(
            "SELECT body FROM objects WHERE kind=? AND namespace=? ORDER BY name", (kind, namespace)
        ).fetchall()
    return [_loads(r[0]) for r in rows]


def _list_labelled(conn: sqlite3.Connection, kind: str, namespace: str, label: str, value: str) -> list[dict[str, Any]]:
    if (kind, label) not in INDEXED_LABELS:  # the expression must match the index's to use it (and is SQL text)
        raise ValueError(f"no index on label {label!r} of {kind}")
    # no ORDER BY: with it SQLite prefers the primary key (ordered by name) and scans the namespace's objects
    rows = conn.execute(f"SELECT name, body FROM objects WHERE kind = '{kind}' AND namespace = ? AND {_label_expr(label)} = ?",
                        (namespace, value)).fetchall()
    return [_loads(b) for _, b in sorted(rows)]


def _list_selecting(conn: sqlite3.Connection, indexed: bool, kind: str, namespace: str,
                    labels: dict[str, str] | None) -> list[dict[str, Any]]:
    if kind not in SELECTOR_INDEXED:
        raise ValueError(f"no selector index on {kind}")
    pairs = [(k, v) for k, v in (labels or {}).items() if isinstance(k, str) and isinstance(v, str)]
    if not pairs:
        return []
    if not indexed:  # a store too old for the index that could not be upgraded (read-only): read them all
        path, have = SELECTOR_INDEXED[kind][2:].split("."), dict(pairs)
        out = []
        for obj in _list(conn, kind, namespace):
            sel: Any = obj
            for part in path:
                sel = sel.get(part) if isinstance(sel, dict) else None
            if isinstance(sel, dict) and sel and all(have.get(k) == v for k, v in sel.items()):
                out.append(obj)
        return out
    # one index probe per label; an object is kept when every term of its selector was found. Labels are few (a pod's)
    rows = conn.execute(
        "SELECT name, body FROM objects WHERE kind = ? AND namespace = ? AND name IN ("
        " SELECT s.name FROM json_each(?) AS l CROSS JOIN selector_terms AS s"  # CROSS: the labels drive
        "  ON s.kind = ? AND s.namespace = ? AND s.key = l.key AND s.value = l.atom"
        " GROUP BY s.name HAVING count(*) = max(s.terms))",
        (kind, namespace, _dumps(dict(pairs)), kind, namespace)).fetchall()
    return [_loads(b) for _, b in sorted(rows)]


class Txn:
    """Operations inside one write transaction. Objects are dicts; metadata is set here."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn = store.conn

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return _get(self.conn, kind, namespace, name)

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return _list(self.conn, kind, namespace)

    def list_labelled(self, kind: str, namespace: str, label: str, value: str) -> builtins.list[dict[str, Any]]:
        return _list_labelled(self.conn, kind, namespace, label, value)

    def list_selecting(self, kind: str, namespace: str, labels: dict[str, str] | None) -> builtins.list[dict[str, Any]]:
        return self.store.list_selecting(kind, namespace, labels)

    def _next_revision(self) -> int:
        row = self.conn.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='revision' RETURNING value"
        ).fetchone()
        return int(row[0])

    def _log(self, rev: int, type_: str, kind: str, ns: str, name: str, body: str) -> None:
        self.conn.execute(
            "INSERT INTO changes(revision, type, kind, namespace, name, body) VALUES (?, ?, ?, ?, ?, ?)",
            (rev, type_, kind, ns, name, body),
        )
        if rev % 1000 == 0:
            floor = rev - CHANGE_LOG_KEEP
            if floor > 0:
                self.conn.execute("DELETE FROM changes WHERE revision <= ?", (floor,))
                self.conn.execute("UPDATE meta SET value=? WHERE key='compacted'", (str(floor),))

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = obj["kind"]
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "") if BY_KIND[kind].namespaced else ""
        name = meta["name"]
        if self.get(kind, ns, name) is not None:
            raise AlreadyExists(BY_KIND[kind].resource, name)
        if kind == "Event":
            self._expire_events()
        rev = self._next_revision()
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())  # a registry strategy may fix it first (Job selectors)
        meta["resourceVersion"] = str(rev)
        meta["creationTimestamp"] = now_rfc3339()
        body = _dumps(obj)
        self.conn.execute(
            "INSERT INTO objects(kind, namespace, name, uid, revision, body) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, ns, name, meta["uid"], rev, body),
        )
        self._log(rev, "ADDED", kind, ns, name, body)
        return obj

    def update(self, obj: dict[str, Any], *, check_version: bool = True) -> dict[str, Any]:
        """Replace an object. With check_version, a resourceVersion that differs from the stored one
        is a Conflict; an empty one means 'unconditional' (the caller decides whether that is allowed)."""
        kind = obj["kind"]
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if BY_KIND[kind].namespaced else ""
        name = meta["name"]
        row = self.conn.execute(
            "SELECT uid, revision, body FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, ns, name)
        ).fetchone()
        if row is None:
            raise NotFound(BY_KIND[kind].resource, name)
        uid, current_rev, old_body = row
        given = meta.get("resourceVersion")
        if check_version and given and str(given) != str(current_rev):
            raise Conflict(BY_KIND[kind].resource, name)
        old_meta = json.loads(old_body)["metadata"]
        rev = self._next_revision()
        meta["uid"] = uid
        meta["resourceVersion"] = str(rev)
        meta["creationTimestamp"] = old_meta.get("creationTimestamp")
        body = _dumps(obj)
        self.conn.execute(
            "UPDATE objects SET revision=?, body=? WHERE kind=? AND namespace=? AND name=?",
            (rev, body, kind, ns, name),
        )
        self._log(rev, "MODIFIED", kind, ns, name, body)
        return obj

    def _expire_events(self) -> None:
        """Delete Events last seen more than EVENT_TTL_SECONDS ago (through ``delete``: watchers see them go),
        as the apiserver's event TTL does; run whenever an Event is created, so their number stays bounded."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=EVENT_TTL_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = self.conn.execute(
            "SELECT namespace, name FROM objects WHERE kind='Event' AND COALESCE(json_extract(body, '$.lastTimestamp'),"
            " json_extract(body, '$.eventTime'), json_extract(body, '$.metadata.creationTimestamp'), '') < ?", (cutoff,)
        ).fetchall()
        for ns, name in rows:
            self.delete("Event", ns, name)

    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        ns = namespace if BY_KIND[kind].namespaced else ""
        old = self.get(kind, ns, name)
        if old is None:
            raise NotFound(BY_KIND[kind].resource, name)
        rev = self._next_revision()
        self.conn.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, ns, name))
        old["metadata"]["resourceVersion"] = str(rev)
        self._log(rev, "DELETED", kind, ns, name, _dumps(old))
        return old

    # ------------------------------------------------------------------------------ allocations

    def allocate(self, pool: str, value: str, owner: str) -> bool:
        """Claim value in pool for owner. False when someone else holds it; True when free or ours."""
        cur = self.conn.execute("INSERT OR IGNORE INTO allocations(pool, value, owner) VALUES (?, ?, ?)", (pool, value, owner))
        if cur.rowcount == 1:
            return True
        row = self.conn.execute("SELECT owner FROM allocations WHERE pool=? AND value=?", (pool, value)).fetchone()
        return row is not None and row[0] == owner

    def is_allocated(self, pool: str, value: str) -> bool:
        return self.conn.execute("SELECT 1 FROM allocations WHERE pool=? AND value=?", (pool, value)).fetchone() is not None

    def allocated(self, pool: str) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT value FROM allocations WHERE pool=?", (pool,))}

    def owned(self, owner: str, pool: str | None = None) -> builtins.list[tuple[str, str]]:
        if pool is None:
            rows = self.conn.execute("SELECT pool, value FROM allocations WHERE owner=?", (owner,))
        else:
            rows = self.conn.execute("SELECT pool, value FROM allocations WHERE owner=? AND pool=?", (owner, pool))
        return [(p, v) for p, v in rows]

    def release(self, pool: str, value: str, owner: str) -> None:
        self.conn.execute("DELETE FROM allocations WHERE pool=? AND value=? AND owner=?", (pool, value, owner))

    def release_all(self, owner: str, pool: str | None = None) -> None:
        if pool is None:
            self.conn.execute("DELETE FROM allocations WHERE owner=?", (owner,))
        else:
            self.conn.execute("DELETE FROM allocations WHERE owner=? AND pool=?", (owner, pool))
