import asyncio
import json
import subprocess
import sys
import textwrap

from console.checks import run_checks, select_checks
from console.config import Config
from console.model import EXIT_CODES, CheckResult, Snapshot, Status, overall_status
from console.plugins import CheckSpec


def _spec(check_id, status=Status.OK):
    return CheckSpec(check_id, lambda ctx: CheckResult(check_id, status, "fine"))


def test_select_only_and_skip_by_id_or_prefix():
    checks = [_spec("rtpengine.ng"), _spec("rtpengine.cli"), _spec("kernel.dmesg"), _spec("opensips.mi")]
    assert [c.id for c in select_checks(checks, only=["rtpengine"])] == ["rtpengine.cli", "rtpengine.ng"]
    assert [c.id for c in select_checks(checks, skip=["rtpengine", "kernel.dmesg"])] == ["opensips.mi"]
    assert [c.id for c in select_checks(checks, only=["rtpengine.ng"], skip=["rtpengine.ng"])] == []


async def test_hung_and_crashing_checks_do_not_stall_or_crash_the_run():
    async def hangs(ctx):
        await asyncio.sleep(30)

    def crashes(ctx):
        raise RuntimeError("boom")

    checks = [CheckSpec("a.hang", hangs), CheckSpec("b.crash", crashes), _spec("c.ok"),
              CheckSpec("d.async", lambda ctx: asyncio.sleep(0, CheckResult("d.async", Status.WARN, "w")))]
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = {r.id: r for r in await run_checks(checks, Snapshot(collected_at=0), Config(), timeout=0.3)}
    assert loop.time() - started < 5  # bounded by the per-check timeout, not the hang
    assert results["a.hang"].status is Status.UNKNOWN and "did not finish" in results["a.hang"].summary
    assert results["b.crash"].status is Status.UNKNOWN and "boom" in results["b.crash"].summary
    assert results["c.ok"].status is Status.OK
    assert results["d.async"].status is Status.WARN
    assert all(r.elapsed_ms >= 0 for r in results.values())


def test_nagios_exit_codes():
    assert EXIT_CODES[overall_status([Status.OK, Status.SKIP])] == 0
    assert EXIT_CODES[overall_status([Status.OK, Status.WARN, Status.UNKNOWN])] == 1
    assert EXIT_CODES[overall_status([Status.WARN, Status.FAIL])] == 2
    assert EXIT_CODES[overall_status([Status.OK, Status.UNKNOWN])] == 3


def test_third_party_and_broken_plugins_load_through_entry_points(tmp_path):
    """A plugin is found exactly like a third-party one; a broken one is reported, the rest work."""
    dist = tmp_path / "thirdparty-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[opsconsole.plugins]\nthirdparty = thirdparty_plugin:plugin\nbroken = broken_plugin:plugin\n")
    (tmp_path / "thirdparty_plugin.py").write_text(textwrap.dedent("""
        from console.plugins import Plugin, CheckSpec
        from console.model import CheckResult, Status
        plugin = Plugin(name="thirdparty", checks=(CheckSpec("thirdparty.hello",
            lambda ctx: CheckResult("thirdparty.hello", Status.OK, "hi")),))
    """))
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('missing dependency foo')\n")
    code = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from console.plugins import load_plugins
        loaded = load_plugins()
        print(json.dumps({"names": [p.name for p in loaded.plugins],
                          "checks": [c.id for c in loaded.checks()],
                          "failures": {f.name: f.error for f in loaded.failures}}))
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert {"opensips", "rtpengine", "host", "thirdparty"} <= set(data["names"])
    assert "thirdparty.hello" in data["checks"]
    assert "missing dependency foo" in data["failures"]["broken"]


def test_threshold_status_boundaries():
    from console.model import threshold_status

    assert threshold_status(79.9, 80, 95) is Status.OK
    assert threshold_status(80, 80, 95) is Status.WARN
    assert threshold_status(94.99, 80, 95) is Status.WARN
    assert threshold_status(95, 80, 95) is Status.FAIL
