"""The CI pass of the atheris targets: each runs for ``PIPVAULT_ATHERIS_SECONDS`` (default 15)
as its own process, from a fresh corpus, and must end without a crash artifact. Longer runs:
``make fuzz FUZZ_SECONDS=…``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SECONDS = int(os.environ.get("PIPVAULT_ATHERIS_SECONDS", "15"))


@pytest.mark.parametrize("target", ["fuzz_envelope.py", "fuzz_page_token.py"])
def test_atheris_target_finds_nothing(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = subprocess.run(
        [sys.executable, str(HERE / target), "--seeds"], capture_output=True, text=True, timeout=60
    )
    assert seeds.returncode == 0, seeds.stderr[-2000:]
    run = subprocess.run(
        [
            sys.executable,
            str(HERE / target),
            f"-max_total_time={SECONDS}",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=1024",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    crashes = [
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-", "timeout-"))
    ]
    assert run.returncode == 0 and not crashes, (crashes, run.stderr[-3000:])
    assert "Done" in run.stderr and " runs in " in run.stderr  # it really fuzzed
