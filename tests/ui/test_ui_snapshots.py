"""SVG snapshot tests of every screen at 80x24 and 160x50 (frozen clock, lab data).

Regenerate after an intended change: pytest tests/ui/test_ui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from .scenes import SCENES, prepare, scene_app


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
@pytest.mark.parametrize("name,keys", SCENES, ids=[name for name, _ in SCENES])
def test_screen_snapshot(snap_compare, name, keys, size):
    assert snap_compare(scene_app(name), terminal_size=size, run_before=prepare(keys))
