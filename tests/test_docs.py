"""Docs that match (issue 16, item 10): the user documentation is in docs/, the README and
the code a user reads cite it (never the developers' design notes), and the help of the
commands names what users looked for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imbalanced_dp.studies._spec import KEY_HELP, KEYS
from test_cli import cli

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "imbalanced_dp"
#: The developers' design notes, which are not part of the repository.
DESIGN_NOTES = re.compile(r"\b(PROTOCOL|ARCHITECTURE|PRIVACY|STYLE)(\.md)?\b(?!_)")
#: Modules whose docstrings and comments still name the design notes (owned elsewhere).
NOT_YET = {"privacy", "engines", "mitigations"}


def test_the_docs_exist_and_link_each_other():
    for name in ("protocol.md", "privacy.md", "architecture.md"):
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert text.startswith("# ")
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    arch = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "privacy.md" in protocol and "architecture.md" in protocol
    # the claims the report cites as "docs/protocol.md, section 5"
    assert "## 5. The study's claims" in protocol
    assert "## 6. What the study leaves unstated" in protocol
    # every column of results.csv and predictions.csv is documented
    from imbalanced_dp.studies import PREDICTION_COLUMNS, RESULT_COLUMNS

    flat = " ".join(arch.split())
    assert ", ".join(RESULT_COLUMNS) in flat
    assert ", ".join(PREDICTION_COLUMNS) in flat


def test_the_readme_cites_docs_not_design_notes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not DESIGN_NOTES.search(readme), DESIGN_NOTES.search(readme)
    for doc in ("docs/protocol.md", "docs/privacy.md", "docs/architecture.md"):
        assert doc in readme
    assert "[parquet]" in readme
    assert "per run inside" in readme and "What one run costs" in readme
    # the report's tables live in report/tables/ (tables/ only with --no-report)
    assert "`report/` with `report.html`, `tables/`" in " ".join(readme.split())


def test_user_facing_code_cites_docs_not_design_notes():
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] in NOT_YET or rel.name == "_store.py" or rel.name == "_runner.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if DESIGN_NOTES.search(line) and "_ATTACK_STYLES" not in line:
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert offenders == []


def test_run_help_names_every_mitigation():
    from imbalanced_dp.cli._main import cli as group
    from imbalanced_dp.mitigations import mitigation_names

    run = group.commands["run"]
    text = " ".join(next(p.help for p in run.params if p.name == "mitigation").split())
    for name in mitigation_names(usable=True):
        assert name in text, name


def test_study_keys_lists_every_key_with_its_default(capsys):
    assert set(KEY_HELP) == set(KEYS)
    code, out, err = cli(capsys, "study", "keys")
    assert code == 0, err
    listed = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert listed[: len(KEYS)] == list(KEYS)
    assert out.count("default: ") == len(KEYS)
    code, out, _ = cli(capsys, "study", "run", "--help")
    assert "study keys" in out
    for key in KEYS:
        assert key in out, key


@pytest.mark.parametrize("command", [["report"], ["study", "status"], ["study", "export"]])
def test_store_has_a_help_text(capsys, command):
    code, out, _ = cli(capsys, *command, "--help")
    assert code == 0
    line = " ".join(out.split())
    assert "--store FILE The results store" in line
