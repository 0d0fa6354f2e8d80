"""Makes the helper modules in bench/ importable (`import peers`): bench/ is not a
package, and pytest runs with --import-mode=importlib."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
