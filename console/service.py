"""ConsoleService: the one facade over the data layer.

The TUI, `snapshot`, `diagnose` and `mi` all go through it, so they share
collectors, checks and the MI session.  It holds no UI state.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

from .checks import run_checks, select_checks
from .config import Config
from .errors import OpsError, WriteRefused
from .model import CheckResult, Snapshot
from .plugins import CollectOptions, LoadedPlugins, load_plugins
from .snapshot import Collector


class ConsoleService:
    def __init__(self, config: Config, *, plugins: LoadedPlugins | None = None) -> None:
        self.config = config
        self.plugins = plugins if plugins is not None else load_plugins()
        self.collector = Collector(config, self.plugins)
        self._mi = None  # the MI session, created on first use

    # ------------------------------------------------------------------ data

    async def snapshot(self, options: CollectOptions | None = None) -> Snapshot:
        return await self.collector.collect(options)

    async def checks(self, snapshot: Snapshot, *, only: Iterable[str] | None = None,
                     skip: Iterable[str] | None = None) -> list[CheckResult]:
        picked = select_checks(self.plugins.checks(), only, skip)
        return await run_checks(picked, snapshot, self.config)

    def check_ids(self) -> list[str]:
        return sorted(c.id for c in self.plugins.checks())

    # ------------------------------------------------------------------ MI

    def _mi_session(self):
        """The command session comes from the plugin that offers one (OpenSIPS's MI today)."""
        if self._mi is None:
            offered = self.plugins.command_session()
            if offered is None:
                raise OpsError("no plugin offers an MI session (is the opensips plugin installed?)")
            plugin, factory = offered
            self._mi = factory(self.config, source=self._source_of(plugin))
        return self._mi

    def _source_of(self, plugin) -> Any:
        """The plugin's own collector source, which its session shares: one MI connection policy
        and one heavy call at a time across the polls and the MI prompt (None: it has none)."""
        self.collector.start()
        return next((s for s in self.collector.sources if s.name == plugin.name), None)

    def is_write_method(self, name: str) -> bool:
        try:
            return self._mi_session().is_write_method(name)
        except OpsError:
            return True  # unknown means: treat as dangerous

    def mi_commands(self) -> list[str]:
        try:
            return list(self._mi_session().commands())
        except OpsError:
            return []

    async def mi(self, method: str, params: Any = None, *, confirmed: bool = False) -> Any:
        """One MI call.  A write method needs --allow-write *and* a confirmation (the UI's dialog,
        the CLI's prompt or --yes); it is audited with its outcome."""
        session = self._mi_session()
        if not session.is_write_method(method):
            return await session.call(method, params)
        if not self.config.allow_write:
            raise WriteRefused(
                f"{method} changes the platform; refused (read-only mode)",
                hint="start with --allow-write to permit it",
            )
        if not confirmed:
            raise WriteRefused(f"{method} changes the platform; refused without a confirmation")
        with AuditEntry(self.config, method, params) as entry:
            result = await session.call(method, params)
            entry.succeeded()
        return result

    async def mi_hold_estimate(self, method: str, params: Any = None):
        """How long `method` would hold the command target when it walks a whole table (the
        session knows); None when it is not such a read."""
        estimate = getattr(self._mi_session(), "hold_estimate", None)
        return await estimate(method, params) if estimate is not None else None

    async def show_contacts(self, aor: str) -> tuple:
        """Contacts of one AoR, asked on demand (read-only): for lists known by AoR name only."""
        return await self._mi_session().show_contacts(aor)

    def trace_session(self, options: Any = None):
        """A live SIP trace from the command session's plugin (OpenSIPS's tracer: HEP to us), its
        trace_start/trace_stop audited like writes but allowed in read-only mode (transient)."""
        factory = getattr(self._mi_session(), "trace_session", None)
        if factory is None:
            raise OpsError("the command session offers no SIP trace (is the opensips plugin installed?)")
        return factory(options, audit=lambda method, params: AuditEntry(self.config, method, params))

    async def aclose(self) -> None:
        await self.collector.aclose()
        if self._mi is not None:
            try:
                await self._mi.aclose()
            except Exception:  # best effort, as for the sources
                pass


class AuditEntry:
    """One audit line per write: the log is opened *before* the call (no record, no change) and the
    line is written after it, with the outcome: "ok", "error" (+ the MI error) or "interrupted"."""

    def __init__(self, config: Config, method: str, params: Any) -> None:
        self.record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "user": _user(),
            "target": config.mi_target,
            "method": method,
            "params": params,
        }
        self._started = time.monotonic()
        self._file = _open_audit_log(Path(config.audit_log).expanduser())

    def succeeded(self) -> None:
        self.record["outcome"] = "ok"

    def __enter__(self) -> "AuditEntry":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if "outcome" not in self.record:
            if exc_type is None or not issubclass(exc_type, Exception):
                self.record["outcome"] = "interrupted"  # cancelled, Ctrl-C: the write may or may not have happened
            else:
                self.record["outcome"] = "error"
                self.record["error"] = str(exc)
        self.record["elapsed_ms"] = round((time.monotonic() - self._started) * 1000)
        with self._file:
            self._file.write(json.dumps(self.record, ensure_ascii=False) + "\n")


def audit(config: Config, method: str, params: Any, outcome: str = "ok", error: str = "") -> None:
    """Append one audit line now (time, user, target, method, params, outcome)."""
    entry = AuditEntry(config, method, params)
    entry.record["outcome"] = outcome
    if error:
        entry.record["error"] = error
    entry.__exit__(None, None, None)


def _open_audit_log(path: Path):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")
    except OSError as exc:
        # Refuse the action rather than change the platform without a record.
        raise WriteRefused(f"cannot write the audit log {path}: {exc.strerror}; the write was not sent",
                           hint="fix the path or set [console] audit_log") from None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())
