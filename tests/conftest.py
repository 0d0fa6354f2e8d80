"""Makes the helper modules in tests/ importable (`import reference`, `import zoo`):
tests/ is not a package, and pytest runs with --import-mode=importlib."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import os  # noqa: E402

from hypothesis import settings  # noqa: E402

# Local runs draw fresh examples each time (that is how the property tests keep finding
# bugs); CI sets HYPOTHESIS_PROFILE=ci so that a green commit stays green on a re-run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
