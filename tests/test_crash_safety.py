"""Killing a command mid-write leaves the previous output or none, never a partial file."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

WRITER = """
import contextlib
import sys
import time
import numpy as np
import pandas as pd
from uplift import io
from uplift.cli import interrupt_on_sigterm
interrupt_on_sigterm()
rows = int(sys.argv[2])
frame = pd.DataFrame({"customer_id": np.arange(rows), "value": np.arange(rows) * 0.5,
                      "text": np.repeat("x" * 40, rows)})
real_atomic_path = io.atomic_path
version = 0


@contextlib.contextmanager
def paused_atomic_path(path, mode=None):
    # from the second version on: the temporary file is fully written, the rename into place
    # has not happened; say so and wait to be killed there
    with real_atomic_path(path, mode) as tmp:
        yield tmp
        if version >= 2:
            print("pending", flush=True)
            time.sleep(120)


io.atomic_path = paused_atomic_path
while True:
    version += 1
    io.write_table(frame.assign(version=version), sys.argv[1])
    print(version, flush=True)
"""

@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("name", ["out.parquet", "out.csv"])
def test_killed_table_writes_leave_a_whole_file(tmp_path, sig, name):
    target = tmp_path / name
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "300000"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "1"          # one complete version exists
    assert proc.stdout.readline().strip() == "pending"    # version 2 written, not renamed
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert len(leftovers) == 1                            # the kill lands mid-write
    proc.send_signal(sig)
    proc.wait(timeout=30)
    table = pd.read_parquet(target) if name.endswith("parquet") else pd.read_csv(target)
    assert len(table) == 300_000 and set(table["version"]) == {1}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    if sig == signal.SIGTERM:
        assert not leftovers                  # interrupted writes clean up after themselves


def test_killed_cli_command_keeps_the_previous_output(small_bank_dir, tmp_path):
    out = tmp_path / "features.parquet"
    command = [sys.executable, "-c", "from uplift.cli import main; main()", "--quiet",
               "features", "--data", str(small_bank_dir), "--as-of", "2025-10-01", "--out",
               str(out)]
    subprocess.run(command, check=True, timeout=300)
    previous = out.read_bytes()
    for delay in (0.5, 1.5, 2.5, 4.0):
        proc = subprocess.Popen(command)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        assert out.read_bytes() == previous or code == 0
        assert len(pd.read_parquet(out)) == 3000
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_killed_simulation_leaves_no_half_folder(tmp_path):
    out = tmp_path / "bank"
    proc = subprocess.Popen([sys.executable, "-c", "from uplift.cli import main; main()",
                             "--quiet", "simulate", "--customers", "40000", "--out", str(out)])
    deadline = time.monotonic() + 240
    # kill only once the simulation is writing: its staging folder already holds a file
    while not [p for p in tmp_path.glob(".bank.*") if p.is_dir() and any(p.iterdir())]:
        assert proc.poll() is None, "the simulation ended before it could be killed mid-write"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists() or not any(Path(out).iterdir())
