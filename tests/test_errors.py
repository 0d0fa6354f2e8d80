"""graphnet.errors: the one "did you mean" helper every message uses, and the one way a message quotes user text."""
from __future__ import annotations

from graphnet.errors import QUOTE_LIMIT, did_you_mean, quoted, quoted_list, shorten, suggestions

from tests._support.package_source import PACKAGE, imported_modules, package_files


def test_suggestions_prefer_a_case_insensitive_match_then_a_synonym():
    assert suggestions("ReLU", ["relu", "tanh"]) == ["relu"]
    assert suggestions("lr", ["learning_rate", "momentum"]) == ["learning_rate"]


def test_suggestions_give_up_to_n_close_spellings_best_first():
    choices = ["spirals", "spiral", "blobs"]
    assert suggestions("spirl", choices, n=5) == ["spiral", "spirals"]
    assert suggestions("spirl", choices) == ["spiral"]
    assert suggestions("zzz", choices, n=5) == []


def test_did_you_mean_formats_the_best_suggestion_and_not_the_word_itself():
    assert did_you_mean("afine", ["affine", "relu"]) == "; did you mean 'affine'?"
    assert did_you_mean("relu", ["affine", "relu"]) == ""
    assert did_you_mean("zzz", ["affine", "relu"]) == ""


def test_no_module_but_errors_looks_for_close_spellings_on_its_own():
    users = [path.relative_to(PACKAGE).as_posix() for path in package_files()
             if any(name.split(".")[0] == "difflib" for name in imported_modules(path))]
    assert users == ["errors.py"]


def test_quoted_text_is_cut_and_says_how_long_it_was():
    assert quoted("f1") == "'f1'" and quoted("a\tb") == "'a\\tb'"  # control characters shown, not printed
    long = "c" * 200_000  # a header cell of 200 kB
    assert quoted(long) == repr("c" * QUOTE_LIMIT) + "... (200,000 characters)"
    assert shorten(long, 5) == "ccccc... (200,000 characters)" and shorten("short") == "short"


def test_quoted_list_shows_the_first_items_and_the_count():
    assert quoted_list(["a", "b"]) == "'a', 'b'"
    names = [f"c{i}" for i in range(30_000)]
    assert quoted_list(names) == ", ".join(f"'c{i}'" for i in range(10)) + ", ... (30,000 in all)"
    assert len(quoted_list(["y" * 10**6] * 10**4)) < 20 * QUOTE_LIMIT
