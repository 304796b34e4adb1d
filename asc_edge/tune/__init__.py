"""``asc-edge tune``: hardware-aware search over frontend, model size and recipe (issue 18).

:mod:`~asc_edge.tune.space` declares what may be chosen and rejects infeasible points before training;
:mod:`~asc_edge.tune.study` runs the Optuna study, benches the finalists on the emulated device and
writes the Pareto front.
"""

from .space import Feasibility, SearchSpace, check_feasible, suggest
from .study import TuneSettings, run_tune

__all__ = ["Feasibility", "SearchSpace", "TuneSettings", "check_feasible", "run_tune", "suggest"]
