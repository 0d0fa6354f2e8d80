"""The README read as the tests read it: its fenced blocks and the command under a heading."""
from __future__ import annotations

from tests._support.paths import ROOT


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order (language "" for a bare fence)."""
    blocks, language, body = [], None, []
    for line in text.splitlines():
        if language is None and line.startswith("```"):
            language, body = line[3:].strip(), []
        elif language is not None and line.strip() == "```":
            blocks.append((language, "\n".join(body)))
            language = None
        elif language is not None:
            body.append(line)
    return blocks


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash blocks, stripped, in order."""
    return [body.strip() for language, body in code_blocks(text) if language == "bash"]


def section(text: str, heading: str) -> str:
    """The text from the heading "## {heading}" to the next "## " heading."""
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def readme_command(heading: str) -> str:
    """The first ```bash block under a README heading (as .ci/run reads it), one line."""
    command = bash_blocks(section((ROOT / "README.md").read_text(), heading))[0]
    assert "\n" not in command, f"the command under '{heading}' is not one line"
    return command


def mpi_block() -> str:
    """The README's block that launches training on several processes with mpiexec."""
    main_job = section((ROOT / "README.md").read_text(), "Train a network (the main job)")
    start = main_job.index("### Train on several processes (MPI)")
    return next(block for _, block in code_blocks(main_job[start:]) if "mpiexec" in block)
