"""Makes the helper modules in tests/ importable (`import reference`, `import zoo`):
tests/ is not a package, and pytest runs with --import-mode=importlib."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
