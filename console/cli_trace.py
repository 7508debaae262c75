"""`opsconsole trace`: OpenSIPS's tracer sends us HEP; we print the ladder, explain each call, write
a pcap, and always stop the trace (also on Ctrl-C, SIGTERM, SIGHUP)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from .cli_common import EXIT, UsageError, _err, _platform, _report_plugin_failures, _service
from .errors import ConfigError, OpsError, ProtocolError, TransportError

def _trace_listen(text: str | None) -> tuple[str, int]:
    """--listen IP, IP:PORT or [V6]:PORT; port 0 or none: from the OS."""
    import ipaddress

    if not text:
        return "", 0
    value = text.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.lstrip(":") or "0"
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, "0"
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise UsageError(f"--listen: expected IP[:PORT] (OpenSIPS sends HEP to an address), got {text!r}") from None
    if not 0 <= port < 65536:
        raise UsageError(f"--listen: port {port} out of range")
    return host, port


def _trace_options(args: argparse.Namespace):
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    host, port = _trace_listen(args.listen)
    return {"caller": args.caller or "", "callee": args.callee or "", "ip": args.ip or "", "scope": args.scope,
            "listen_host": host, "listen_port": port}


class _Stop:
    """SIGINT/SIGTERM/SIGHUP end the trace loop (the trace is stopped in `finally`); which one is kept."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: int | None = None
        self._installed: list[int] = []

    def install(self) -> None:
        import signal

        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(number, self._stop, number)
                self._installed.append(number)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass

    def _stop(self, number: int) -> None:
        self.signal = self.signal or number
        self.event.set()

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for number in self._installed:
            loop.remove_signal_handler(number)


async def _trace(args: argparse.Namespace) -> int:
    options = _trace_options(args)
    created = bool(args.pcap) and not os.path.exists(args.pcap)
    pcap = _open_pcap(args.pcap) if args.pcap else None
    try:
        async with _platform(args) as (plugins, demo):
            service = _service(args, demo, plugins)
            try:
                return await _run_trace(service, options, pcap, args.duration)
            finally:
                await service.aclose()
    finally:
        if pcap is not None:
            _close_pcap(pcap, args.pcap, created)


def _close_pcap(pcap, path: str, created: bool) -> None:
    """Close it; an empty file we created (the trace never started) is not left behind as a capture."""
    empty = pcap.tell() == 0
    pcap.close()
    if empty and created:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _open_pcap(path: str):
    try:
        return open(path, "wb")
    except OSError as exc:
        raise UsageError(f"--pcap {path}: cannot write: {exc.strerror or exc}") from None


async def _run_trace(service, options: dict, pcap, duration: float | None) -> int:
    import signal

    _report_plugin_failures(service)
    if not service.config.trace:
        _err("tracing is turned off on this host ([trace] enabled = false or [opensips] trace = false in the "
             "configuration); nothing was started")
        return EXIT["partial"]["trace"]
    stop = _Stop()
    stop.install()
    try:
        session = service.trace_session(options)
        try:
            await session.start()
        except ValueError as exc:  # an option the tracer cannot take (--caller with a space, …)
            raise UsageError(str(exc)) from None
        except (TransportError, ProtocolError) as exc:
            _err(str(exc))
            await session.stop()
            return EXIT["unreachable"]["trace"]
        except (UsageError, ConfigError):
            raise
        except OpsError as exc:  # cannot trace (what to add), refused, or the audit log is not writable
            _err(str(exc))
            await session.stop()
            return EXIT["partial"]["trace"]
        try:
            if pcap is not None:
                session.attach_pcap(pcap)
            _trace_banner(session, duration)
            await _trace_loop(session, stop, duration, lambda flow: _explained(session, service, flow))
        finally:
            await session.stop()
        for flow in session.ladder.unexplained():  # calls still open when the trace ended
            _print_lines(await _explained(session, service, flow))
        _err(f"trace {session.trace_id} stopped: {session.ladder.count} messages, {len(session.ladder.calls)} "
             f"Call-ID(s){session.listener_note()}")
        if session.stop_error:
            _err(f"the trace {session.trace_id} could not be stopped: {session.stop_error} — it keeps sending to "
                 f"{session.uri} until OpenSIPS restarts or `opsconsole mi trace_stop id={session.trace_id} "
                 "--allow-write` (the next `opsconsole trace` also removes it)")
            return EXIT["partial"]["trace"]
    finally:
        stop.remove()
    if stop.signal == signal.SIGINT:
        return EXIT["interrupted"]["trace"]
    return EXIT["ok"]["trace"]


def _trace_banner(session, duration: float | None) -> None:
    options = session.options
    filters = ", ".join(options.filters()) or "none"
    removed = (f"; removed {len(session.removed_leftovers)} trace(s) left behind by a crash: "
               f"{', '.join(session.removed_leftovers)}") if session.removed_leftovers else ""
    until = f"for {duration:g} s" if duration else "until Ctrl-C"
    _err(f"tracing as {session.trace_id} (scope {options.scope}, filter {filters}), HEP to {session.uri}, "
         f"{until}{removed}")


def _print_lines(lines) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


TRACE_SETTLE_S = 1.0  # a call is explained once it ended and was quiet this long (its ACK had time)


async def _explained(session, service, flow) -> list[str]:
    """A call in plain words, with OpenSIPS's notes (MI) and joined with what the console knows: one
    collection as `snapshot` makes (the contact list within full_sync_max, the dialogs, this call's
    media session), so the lines say whether the callee is registered and over what, the dialog, and
    RTPengine's packets and quality.  Other requests: their explanation only, when it is news."""
    explanation, notes = await session.explain(flow)
    if not explanation.noteworthy:
        return []
    view = await _console_view(service, flow.call_id) if flow.kind == "INVITE" else None
    if view is not None:  # the join says what the dialog is; OpenSIPS's own note would say it twice
        notes = tuple(note for note in notes if not note.startswith("dialog in OpenSIPS"))
    thresholds = service.config.thresholds
    return session.state_lines(flow, view, notes=notes, mos_poor=thresholds.mos_poor,
                               silent_after_s=thresholds.silent_after_s)


async def _console_view(service, callid: str):
    """What the console knows now (a LiveView of one collection), or None when it cannot collect."""
    from .live_state import LiveState
    from .plugins import CollectOptions

    options = CollectOptions(media_detail_callids=frozenset({callid}), host_facts=False,
                             full_sync_max=service.config.full_sync_max)
    try:
        snapshot = await service.snapshot(options)
    except OpsError:
        return None
    state = LiveState(thresholds=service.config.thresholds)
    state.apply(snapshot, options)
    return state.view()


async def _trace_loop(session, stop: _Stop, duration: float | None, explained=None) -> None:
    """Print each message as it arrives, and each call's explanation once it ended, until stopped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration if duration else None
    lines = session.lines()
    next_line = asyncio.ensure_future(anext(lines))
    stopped = asyncio.ensure_future(stop.event.wait())
    try:
        while not stopped.done():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            wait = 0.25 if remaining is None else min(0.25, remaining)
            done, _ = await asyncio.wait({next_line, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if next_line in done:
                try:
                    line = next_line.result()
                except StopAsyncIteration:
                    break
                _print_lines([session.line_text(line)])
                next_line = asyncio.ensure_future(anext(lines))
            for flow in session.ladder.due(loop.time(), TRACE_SETTLE_S):
                _print_lines(await (explained or session.explain_text)(flow))
    finally:
        for task in (next_line, stopped):
            task.cancel()
        await asyncio.gather(next_line, stopped, return_exceptions=True)
        await lines.aclose()
