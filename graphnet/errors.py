"""The exceptions graphnet raises for bad input: each names where the problem is."""
from __future__ import annotations

from difflib import get_close_matches
from typing import Iterable

# Names users bring from other frameworks, and the name graphnet uses.
SYNONYMS = {
    "lr": "learning_rate", "learningrate": "learning_rate", "eps": "epsilon", "rho": "decay_rate",
    "decay": "decay_rate", "wd": "weight_decay", "beta_1": "beta1", "beta_2": "beta2",
    "num_epochs": "epochs", "batch": "batch_size", "p": "rate", "dropout": "rate",
    "out_features": "units", "units_out": "units", "n_out": "units", "activation_fn": "activation",
}


class GraphnetError(Exception):
    """Base class of graphnet's own errors.

    `cli`: the message as the command line words it, when it differs (flags such as
    `--overwrite` where the message names the keyword arguments of the Python API)."""

    def __init__(self, *args: object, cli: str | None = None) -> None:
        super().__init__(*args)
        self.cli = cli

    def command_line_message(self) -> str:
        """The message for a `graphnet` command's error line."""
        return str(self) if self.cli is None else self.cli


class SpecError(GraphnetError, ValueError):
    """A network or run spec is invalid.

    `problems` holds `(location, message)` pairs; a location is a JSON path
    such as `nodes[3].inputs[0]` (empty for the document itself). `source`
    names the file the spec came from, when there is one.
    """

    def __init__(self, problems: list[tuple[str, str]] | str, source: str | None = None):
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = list(problems)
        self.source = source
        super().__init__(self._format())

    def lines(self) -> list[str]:
        """One line per problem: `file: location: message`."""
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{loc}: {msg}" if loc else f"{prefix}{msg}" for loc, msg in self.problems]

    def _format(self) -> str:
        return "\n".join(self.lines())

    def with_source(self, source: str) -> "SpecError":
        """The same problems, attributed to a file."""
        return SpecError(self.problems, source)


class SpecWarning(UserWarning):
    """A spec that is valid but likely not what was meant (a node nothing reads)."""


class DataError(GraphnetError, ValueError):
    """A data file or data set is unusable; the message names the file and the problem."""


class CheckpointError(GraphnetError, ValueError):
    """A checkpoint folder is missing, corrupt, or does not match its spec."""


class RunFolderError(GraphnetError):
    """A run folder can't be used as asked: it exists (and neither resume nor overwrite was
    asked), another trainer holds it, or it has no checkpoint yet; the message names it."""


class BackendError(GraphnetError, ValueError):
    """A kernel backend can't be used: its name is unknown (or see NumbaMissingError)."""


class NumbaMissingError(BackendError, ImportError):
    """The numba backend was asked for, and numba is not installed."""


class PlanError(GraphnetError, ValueError):
    """An input does not match what a compiled plan expects (dtype, shape, layout)."""


class ConfigError(GraphnetError, ValueError):
    """A setting of `gn.set_config` / `gn.config_context` is unknown or out of range; names it."""


class NonFiniteError(GraphnetError, FloatingPointError):
    """Training produced a NaN or infinite value; names the step and the first bad node."""


def suggestions(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The choices closest to `word`, best first: a case-insensitive match or a known synonym
    (alone), else up to `n` close spellings (difflib ratio >= cutoff)."""
    choices = sorted(set(choices))
    by_lower = {choice.lower(): choice for choice in choices}
    lowered = word.lower()
    if lowered in by_lower:
        return [by_lower[lowered]]
    if SYNONYMS.get(lowered) in by_lower:
        return [by_lower[SYNONYMS[lowered]]]
    return get_close_matches(word, choices, n=n, cutoff=cutoff)


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`; did you mean 'x'?` for the choice closest to `word` (see `suggestions`), else ``."""
    match = next(iter(suggestions(word, choices, cutoff=cutoff)), None)
    return f"; did you mean '{shorten(match)}'?" if match is not None and match != word else ""


QUOTE_LIMIT = 60  # characters of user text (a cell, a column name, a label) a message quotes


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` as it is when at most `limit` characters long, else its first `limit` characters
    and how long it is: a message never repeats a whole file (a 200 MB header line)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text` in quotes (Python's repr, which shows control characters), cut as `shorten` cuts."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def quoted_list(items: Iterable[str], limit: int = 10) -> str:
    """The first `limit` items, each `quoted`, comma-separated, and how many there are in all."""
    items = list(items)
    shown = ", ".join(quoted(str(item)) for item in items[:limit])
    return shown + (f", ... ({len(items):,} in all)" if len(items) > limit else "")
