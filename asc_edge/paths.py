"""Where asc-edge keeps what it can rebuild: the cache root and this checkout's build trees.

Nothing is written into the source checkout (it may be read-only, or one of several checkouts):

- :func:`cache_root`: ``$ASC_EDGE_CACHE`` or ``~/.cache/asc-edge`` — features, teacher logits,
  the CMSIS-DSP sources, kept fault ELFs;
- :func:`build_root`: ``$ASC_EDGE_BUILD`` or ``<cache_root>/build/<checkout>-<sha256(path)[:8]>`` —
  the host shared libraries (kernels, generated models, the C frontend); one tree per checkout,
  so checkouts with different sources never share object files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    """``$ASC_EDGE_CACHE`` or ``~/.cache/asc-edge``."""
    return Path(os.environ.get("ASC_EDGE_CACHE", Path.home() / ".cache" / "asc-edge"))


def build_root() -> Path:
    """``$ASC_EDGE_BUILD`` or ``<cache_root>/build/<checkout name>-<first 8 hex of sha256(checkout path)>``."""
    if os.environ.get("ASC_EDGE_BUILD"):
        return Path(os.environ["ASC_EDGE_BUILD"])
    tag = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]
    return cache_root() / "build" / f"{REPO_ROOT.name}-{tag}"
