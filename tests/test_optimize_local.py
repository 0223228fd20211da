"""The key-less path end to end: `tracec optimize` on the triage example with the embedded model
(llama.cpp in-process). The model is weak; what must hold is that the run completes, the model's real
replies are on record, sources stay untouched, and a patch exists only if it really scores better."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import TRACEC
from test_localmodel import missing_local_model

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "triage"


def val_score(root: Path) -> float:
    code = ("import task; outs = [task.feedback(t, task.run(t))[0] for t in task.val]; "
            "print(sum(outs) / len(outs))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.slow
@pytest.mark.skipif(missing_local_model() is not None, reason=f"embedded model: {missing_local_model()}")
def test_optimize_triage_with_the_embedded_model(tmp_path):
    root = tmp_path / "triage"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pyproject.toml").write_text("")
    before = {p.name: p.read_bytes() for p in root.glob("*.py")}
    baseline = val_score(root)
    result = subprocess.run([TRACEC, "optimize", "task.py", "--steps", "2"], cwd=root,
                            capture_output=True, text=True, timeout=900,
                            env={**__import__("os").environ, "TRACEC_MODEL": ""})
    assert result.returncode == 0, result.stderr
    assert "model local/smollm2" in result.stderr
    assert {p.name: p.read_bytes() for p in root.glob("*.py")} == before
    run = next((root / ".tracec" / "runs").iterdir())
    calls = [json.loads(p.read_text()) for p in sorted((run / "calls").glob("*.json"))]
    assert calls and all(c["reply"].strip() and c["completion_tokens"] > 0 for c in calls)
    patches = sorted((root / ".tracec" / "patches").glob("*.patch"))
    if not patches:
        assert "no improvement" in result.stdout
        return
    applied = subprocess.run([TRACEC, "apply"], cwd=root, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert val_score(root) > baseline          # the patch really is the better-scoring candidate
