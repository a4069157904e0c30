"""The shipped examples and the README's Python quickstart run as written."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_SECTION = "## Python quickstart"

# Run user code the way a user's test suite would see it: every warning is an error, except
# the accountant's remark that pyproject.toml also ignores.
_STRICT = textwrap.dedent(
    """\
    import runpy, sys, warnings
    warnings.simplefilter("error")
    warnings.filterwarnings("ignore", message="Optimal order is the")
    sys.argv = [sys.argv[1]]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def _run(script: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _STRICT, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def readme_quickstart(text: str) -> str | None:
    """Every ```python block of the README section titled ``## Python quickstart``, one
    after the other (later blocks continue the first)."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == README_SECTION)
    except StopIteration:
        return None
    body = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        body.append(line)
    blocks = re.findall(r"^```python\n(.*?)^```", "\n".join(body) + "\n", re.S | re.M)
    return "".join(blocks) if blocks else None


def test_readme_quickstart_extraction():
    text = "# x\n\n## Python quickstart\n\nSome words.\n\n```python\nprint(1)\n```\n\n## Next\n"
    assert readme_quickstart(text) == "print(1)\n"
    two = text.replace("## Next", "More.\n\n```python\nprint(3)\n```\n\n## Next")
    assert readme_quickstart(two) == "print(1)\nprint(3)\n"
    assert readme_quickstart("# x\n\n## Other\n```python\nprint(2)\n```\n") is None


def test_readme_quickstart_runs(tmp_path):
    code = readme_quickstart((ROOT / "README.md").read_text(encoding="utf-8"))
    if code is None:
        pytest.skip(f"README.md has no {README_SECTION!r} section with a ```python block")
    script = tmp_path / "readme_quickstart.py"
    script.write_text(code, encoding="utf-8")
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "avg/total" in done.stdout
    assert "ε of the whole pipeline" in done.stdout


def test_quickstart_example_runs(tmp_path):
    done = _run(ROOT / "examples" / "quickstart.py", tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("avg/total") == 3
    assert "spent ε = " in out
    assert "not covered:" in out
    assert list(tmp_path.iterdir()) == []  # writes nothing
