"""Moved to :mod:`redistest.deployment` (shared with ``bench``). Only ``Deployed`` is re-exported
here, for ``test_99_destroy.py``, which still imports it from this package; new code imports
``redistest.deployment``."""

from redistest.deployment import Deployed

__all__ = ["Deployed"]
