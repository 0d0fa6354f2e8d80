"""Where things are in the checkout: its root, the zoo specs, the committed test fixtures."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"  # the model zoo (and schema.json)
FIXTURES = ROOT / "tests" / "fixtures"  # committed files the tests read
ONNX_FIXTURES = FIXTURES / "onnx"  # PyTorch-exported MLPs and their sample inputs and outputs
SPEC_CORPUS = FIXTURES / "specs"  # the corpus of nasty spec files
SUPPORT = Path(__file__).resolve().parent  # this package: helpers, and scripts tests run as child processes
