"""pushlane benchmarks: `make bench` (python -m bench), and the scale model alone (python -m bench.scale_model)."""

import sys
from pathlib import Path

# The benchmarks import push_core as the functions do, from the layer's folder.
_LAYER = str(Path(__file__).resolve().parents[1] / "layers" / "push_core")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
