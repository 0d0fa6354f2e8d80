"""The README's commands are the ones CI runs and the ones that set up a fresh machine."""
from __future__ import annotations

import re
from pathlib import Path

from graphnet.data import DEBIAN_PACKAGES

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    [command] = _bash_blocks(_section(readme, "Run the tests"))
    assert "'.[test]'" in command and command.endswith("pytest")
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines, f"{command!r} is not a line of .ci/run"


def test_the_main_job_command_installs_its_data_set():
    readme = (ROOT / "README.md").read_text()
    [command] = _bash_blocks(_section(readme, "Train a network (the main job)"))
    assert f"apt-get install -y {DEBIAN_PACKAGES['fashion-mnist']}" in command
    assert command.index("apt-get install") < command.index("pip install") < command.index("graphnet train")
    assert "specs/fashion_mlp.json" in command
