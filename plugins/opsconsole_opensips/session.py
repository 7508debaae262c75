"""MISession: what `opsconsole mi` and the TUI's MI prompt talk to (plugin extra "mi_session").

It maps 3.x/4.0 command names to the connected server's spelling (detected once
from `version` + `which`), and says which commands change the platform; the
refusal itself (read-only unless --allow-write) is the caller's job.
"""

from __future__ import annotations

from typing import Any

from .client import MIClient, make_client
from .codec import METHOD_NOT_FOUND, MIError
from .commands import RENAMES_40, CommandMap, detect_commands, is_namespaced, is_write_method
from .parse import parse_contacts

AOR_NOT_FOUND = 404  # usrloc's answer to ul_show_contact for an AoR with no contacts (captured)


class MISession:
    """`source`: the collector's OpenSIPSSource for the same node, when there is one: the session
    then uses its MI client (one connection policy, one heavy call at a time across both) and
    its detected command map, and leaves closing the client to it."""

    def __init__(self, config, client: MIClient | None = None, *, source=None) -> None:
        self.config = config
        self._client = client
        self._source = source
        self._commands: CommandMap | None = None

    def client(self) -> MIClient:
        if self._client is None:
            self._client = self._source.client() if self._source is not None else make_client(self.config)
        return self._client

    def is_write_method(self, name: str) -> bool:
        return is_write_method(name)

    def commands(self) -> list[str]:
        """Command names for completion: the server's `which` once known, else the known names
        for the configured (or default 3.x) version.  Never does I/O."""
        if self._commands is not None and self._commands.commands:
            return sorted(self._commands.commands)
        if is_namespaced(self.config.opensips_version or ""):
            return sorted(RENAMES_40.values())
        return sorted(RENAMES_40)

    async def detect(self) -> CommandMap:
        if self._commands is None:
            known = self._source.commands if self._source is not None else None
            if known is not None:
                return known  # not kept: the source re-detects after an OpenSIPS restart
            self._commands, _ = await detect_commands(self.client().call, self.config.opensips_version or "")
        return self._commands

    async def call(self, method: str, params: Any = None) -> Any:
        """Call `method` (either spelling) with the name this server answers to."""
        try:
            commands = await self.detect()
        except MIError as exc:
            if exc.code != METHOD_NOT_FOUND:
                raise
            commands = CommandMap(version=self.config.opensips_version or "")
        return await self.client().call(commands.name(method.strip()), params)

    async def hold_estimate(self, method: str, params: Any = None):
        """How long `method` would hold mi_http when it walks a whole table (hold.HoldEstimate),
        None when it is not such a read."""
        from .hold import estimate_hold  # only `opsconsole mi` asks

        return await estimate_hold(self.call, method, params)

    async def show_contacts(self, aor: str, table: str = "location") -> tuple:
        """One AoR's contacts (`ul_show_contact`): cheap at any table size, unlike a dump.
        An AoR that is not registered (any more) gives (); other errors are raised."""
        try:
            result = await self.call("ul_show_contact", {"table_name": table, "aor": aor})
        except MIError as exc:
            if exc.code == AOR_NOT_FOUND and "aor" in str(exc).lower():
                return ()
            raise
        return parse_contacts(result, self.config.name or self.config.mi_target)

    def trace_session(self, options=None, *, audit=None):
        """A SIP trace through this node's tracer (trace.TraceSession), sharing this session's MI."""
        from urllib.parse import urlsplit

        from .trace import TraceOptions, TraceSession

        if isinstance(options, dict):
            options = TraceOptions(**options)
        mi_host = urlsplit(self.config.mi_url).hostname or "" if self.config.mi_url else ""
        return TraceSession(self.call, options or TraceOptions(), audit=audit, mi_host=mi_host)

    async def aclose(self) -> None:
        if self._client is not None and self._source is None:  # a source's client is the source's to close
            await self._client.aclose()
