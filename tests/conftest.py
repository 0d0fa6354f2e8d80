"""Session settings for the whole suite. The helpers live in the package tests._support
(`from tests._support.zoo import ...`), importable because pyproject's pytest settings put
the checkout's root on sys.path (`pythonpath`)."""
import os

from hypothesis import settings

# Local runs draw fresh examples each time (that is how the property tests keep finding
# bugs); CI sets HYPOTHESIS_PROFILE=ci so that a green commit stays green on a re-run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
