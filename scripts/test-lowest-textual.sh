#!/usr/bin/env bash
# The TUI tests against the lowest Textual pyproject.toml allows ("textual>=X,<9"): the range
# states versions that are tested.  The venv is kept in .venv-lowest and reinstalled only when
# pyproject.toml changed (a new bound, a new package).  Extra arguments go to pytest.
#
#     scripts/test-lowest-textual.sh [-x] [-k expr]
set -euo pipefail
cd "$(dirname "$0")/.."

lowest=$(sed -n 's/^ *"textual>=\([0-9][0-9.]*\),.*/\1/p' pyproject.toml)
if [ -z "$lowest" ]; then
    echo "test-lowest-textual: no 'textual>=X,...' dependency in pyproject.toml" >&2
    exit 2
fi
venv=.venv-lowest
python=${PYTHON:-python3}

installed() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("textual"))' 2>/dev/null || true
}

stamp="$venv/.pyproject.sha256"
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(installed)" != "$lowest" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "test-lowest-textual: preparing $venv with textual==$lowest" >&2
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]' "textual==$lowest"
    echo "$wanted" > "$stamp"
fi
if [ "$(installed)" != "$lowest" ]; then
    echo "test-lowest-textual: $venv has textual $(installed), not $lowest" >&2
    exit 2
fi

echo "test-lowest-textual: tests/ui with textual $lowest" >&2
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/ui tests/test_import_hygiene.py "$@"
