"""The README's Python API block runs as written, from the repo root, and prints what its comments say."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import CONF_DIR

ROOT = Path(CONF_DIR).parent


def readme_api_block() -> str:
    section = (ROOT / "README.md").read_text().split("## Python API\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("    ") or not line.strip()]
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("import"))
    return "\n".join(line[4:] for line in lines[start:])


def test_the_readme_python_api_example_runs_and_prints_its_claims(tmp_path):
    script = tmp_path / "api.py"
    script.write_text(readme_api_block())
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "torch.Size([16, 4])" in out
    # BM25 and the base MiniLM on the demo test set, as the README's evaluation table gives them.
    assert re.search(r"NDCG@10 0\.7289 -> 0\.9158, p ", out), out
