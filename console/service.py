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
        """The MI session comes from the plugin that offers one (OpenSIPS today)."""
        if self._mi is None:
            for plugin in self.plugins.plugins:
                factory = plugin.extras.get("mi_session")
                if factory is not None:
                    self._mi = factory(self.config)
                    break
            else:
                raise OpsError("no plugin offers an MI session (is the opensips plugin installed?)")
        return self._mi

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
        """One MI call.  Write methods need --allow-write (and the UI's confirmation)."""
        session = self._mi_session()
        if session.is_write_method(method):
            if not self.config.allow_write:
                raise WriteRefused(
                    f"{method} changes the platform; refused (read-only mode)",
                    hint="start with --allow-write to permit it",
                )
            audit(self.config, method, params)
        return await session.call(method, params)

    async def show_contacts(self, aor: str) -> tuple:
        """Contacts of one AoR, asked on demand (read-only): for lists known by AoR name only."""
        return await self._mi_session().show_contacts(aor)

    async def aclose(self) -> None:
        await self.collector.aclose()
        if self._mi is not None:
            try:
                await self._mi.aclose()
            except Exception:  # best effort, as for the sources
                pass


def audit(config: Config, method: str, params: Any) -> None:
    """Append every write action to a local audit log (time, user, target, method, params)."""
    path = Path(config.audit_log).expanduser()
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "user": _user(),
        "target": config.mi_target,
        "method": method,
        "params": params,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as exc:
        # Refuse the action rather than change the platform without a record.
        raise OpsError(f"cannot write the audit log {path}: {exc.strerror}",
                       hint="fix the path or set [console] audit_log") from None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())
