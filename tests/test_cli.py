"""The command line contract: options, exit codes, JSON shape, import hygiene."""

import json
import socket
import subprocess
import sys
import time
import textwrap

import pytest

from console.cli import build_parser, main, parse_mi_params
from console.errors import ConfigError


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_target(timeout="0.5"):
    return ["--mi-url", f"http://127.0.0.1:{free_port()}/mi", "--ng", f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
            "--cli", f"127.0.0.1:{free_port()}", "--timeout", timeout]


def test_mi_params_forms():
    assert parse_mi_params([]) is None
    assert parse_mi_params(["aor=1000", "table_name=location"]) == {"aor": "1000", "table_name": "location"}
    assert parse_mi_params(["brief:=1", "x:=[1,2]"]) == {"brief": 1, "x": [1, 2]}
    assert parse_mi_params(['{"statistics": ["all"]}']) == {"statistics": ["all"]}
    assert parse_mi_params(['["usrloc:"]']) == ["usrloc:"]
    assert parse_mi_params(["url=sip:a=b"]) == {"url": "sip:a=b"}
    assert parse_mi_params(["location", "1000"]) == ["location", "1000"]  # plain words: positional
    for bad in (["novalue", "k=v"], ["n:=notjson"], ["{broken"]):
        with pytest.raises(ConfigError):
            parse_mi_params(bad)


def test_the_cli_and_the_mi_screen_share_one_grammar():
    from console.views import parse_mi_command

    for words in (["aor=1000", "table_name=location"], ["brief:=1"], ['{"statistics": ["all"]}'],
                  ["location", "1000"], ["url=sip:a=b"]):
        line = "m " + " ".join(f"'{w}'" if not w.startswith("{") else w for w in words)
        assert parse_mi_command(line) == ("m", parse_mi_params(words))


def test_target_options_accepted_before_and_after_the_command():
    parser = build_parser()
    before = parser.parse_args(["--ng", "127.0.0.1:1", "diagnose", "--json"])
    after = parser.parse_args(["diagnose", "--ng", "127.0.0.1:1", "--json"])
    assert before.ng == after.ng == "127.0.0.1:1"
    assert before.command == after.command == "diagnose"


def test_bad_target_is_a_readable_error(capsys):
    assert main(["snapshot", "--ng", "nonsense"]) == 2
    assert "--ng" in capsys.readouterr().err
    assert main(["diagnose", "--timeout", "0"]) == 3  # Nagios UNKNOWN


def test_snapshot_with_everything_down_reports_sources_and_exits_1(capsys):
    started = time.monotonic()
    code = main(["snapshot", "--json", *dead_target()])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 1
    assert {"collected_at", "sources", "overview", "registrations", "dialogs", "media", "calls"} <= set(data)
    assert data["sources"]["opensips"]["ok"] is False and data["sources"]["opensips"]["error"]
    assert data["sources"]["rtpengine"]["ok"] is False and data["sources"]["rtpengine"]["error"]
    assert data["sources"]["host"]["ok"] is True
    assert elapsed < 0.5 * 3 + 1 + 5  # bounded; generous for a loaded CI box


def test_diagnose_json_shape_and_failure_exit(capsys):
    code = main(["diagnose", "--json", *dead_target()])
    data = json.loads(capsys.readouterr().out)
    assert {"status", "checks", "elapsed_ms", "host", "version"} <= set(data)
    ids = {c["id"] for c in data["checks"]}
    assert {"rtpengine.ng", "opensips.mi"} <= ids
    for check in data["checks"]:
        assert {"id", "status", "summary", "evidence", "remedy", "elapsed_ms"} <= set(check)
        assert check["status"] in ("ok", "warn", "fail", "unknown", "skip")
    ng = next(c for c in data["checks"] if c["id"] == "rtpengine.ng")
    assert ng["status"] == "fail" and ng["remedy"]
    assert code == 2 and data["status"] == "fail"


def test_diagnose_only_and_list(capsys):
    assert main(["diagnose", "--list", *dead_target()]) == 0
    listed = capsys.readouterr().out.split()
    assert "rtpengine.ng" in listed and "kernel.dmesg" in listed
    main(["diagnose", "--json", "--only", "rtpengine.ng", *dead_target()])
    data = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in data["checks"]] == ["rtpengine.ng"]


def test_diagnose_text_has_status_words_without_colour(capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    main(["diagnose", "--only", "rtpengine.ng", *dead_target()])
    out = capsys.readouterr().out
    assert "FAIL" in out and "rtpengine.ng" in out and "fix:" in out
    assert "\x1b[" not in out


def test_mi_transport_failure_exit_2(capsys):
    assert main(["mi", "version", *dead_target()]) == 2
    assert "opsconsole:" in capsys.readouterr().err


def test_mi_write_method_refused_without_allow_write(capsys):
    assert main(["mi", "dlg_end_dlg", "h_entry=1", "h_id=2", *dead_target()]) == 1
    err = capsys.readouterr().err
    assert "--allow-write" in err


def test_diagnose_never_imports_textual():
    code = textwrap.dedent(f"""
        import sys
        from console.cli import main
        rc = main(["diagnose", "--json", *{dead_target()!r}])
        print("TEXTUAL_IMPORTED" if any(m == "textual" or m.startswith("textual.") for m in sys.modules) else "CLEAN")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("CLEAN"), out.stdout[-500:] + out.stderr[-2000:]


def test_diagnose_starts_no_subprocess():
    """Every process diagnose could start would show here; the goal (and the fact) is none."""
    code = textwrap.dedent(f"""
        import sys
        spawned = []
        def hook(event, args):
            if event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork", "pty.spawn"):
                spawned.append((event, repr(args)[:200]))
        sys.addaudithook(hook)
        from console.cli import main
        main(["diagnose", "--json", *{dead_target()!r}])
        print("SPAWNED", spawned)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "SPAWNED []", out.stdout[-800:] + out.stderr[-1500:]


def test_no_shell_true_in_code():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = [str(p) for d in ("console", "plugins") for p in (root / d).rglob("*.py")
                 if "shell=True" in p.read_text(encoding="utf-8")]
    assert offenders == []
