"""A viewer draws at a lower CPU priority than training, and the trainers it starts keep the
priority the viewer started with (core.live.spawn.lower_ui_priority)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, os, subprocess, sys, threading
sys.path.insert(0, sys.argv[1])
from tui_train.core.live import spawn

def nice_of_child():
    out = subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"], capture_output=True, text=True)
    return int(out.stdout)

before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
after = spawn.lower_ui_priority(5)
later = {}
t = threading.Thread(target=lambda: later.update(thread=os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
t.start(); t.join()
spawner = spawn._spawner.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
child_of_spawner = spawn._spawner.submit(nice_of_child).result()
print(json.dumps({"before": before, "after": after, "later_thread": later["thread"], "spawner": spawner,
                  "child_of_spawner": child_of_spawner, "child_of_ui": nice_of_child()}))
"""


def test_the_ui_thread_is_lowered_and_the_spawner_keeps_the_original_priority(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    out = subprocess.run([sys.executable, str(script), str(REPO)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    base = r["before"]
    if base + 5 > 19:
        pytest.skip(f"this test process already runs at nice {base}: there is no lower priority to test")
    assert r["after"] == base + 5 and r["later_thread"] == base + 5  # the UI's own threads inherit it
    assert r["spawner"] == base and r["child_of_spawner"] == base    # trainers are started at the original one
    assert r["child_of_ui"] == base + 5                              # (what would happen without the spawner)
