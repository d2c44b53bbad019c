"""Search spaces: ``spaces/<task>.yaml`` -> a validated, define-by-run Optuna space.

A space file holds the task, its metric and mode, the default trial budget, fixed
``TrialConfig`` values and the searched parameters, in the order Optuna samples them::

    task: deepfake
    metric: val_auc            # optional: defaults to lssat.tasks.TASKS[task].metric
    mode: max                  # optional: defaults to the task's mode
    # objectives: {val_auc: max, gflops: min}   # instead: several (search.optimize.objectives)
    trials: 30                 # default for --trials
    scheduler: {grace_fraction: 0.33, reduction_factor: 2}  # ASHA, optional; `none`: no stopping
    sampler: {n_startup_trials: 10}                     # TPE, optional; {name: grid|random}
    fixed: {epochs: 10, img_size: 64}
    params:
      backbone: {choices: [vit_tiny_patch16_224, resnet18]}
      lr: {low: 1.0e-4, high: 3.0e-3, log: true}
      aux_weight: {choices: [0.0, 0.5, 0.75]}
      descriptor: {choices: [lbp, ldp], when: {aux_weight: {gt: 0}}}
      desc_P: {choices: [8, 16], when: {descriptor: lbp}}
    enqueue:                   # optional: configs to evaluate first (Optuna enqueue_trial)
      - {backbone: resnet18, lr: 1.0e-3, aux_weight: 0.0}
    final: {top_k: 3, seeds: 3}  # optional: the held-out stage after the search (search.final)

``train_subset`` / ``val_subset`` may be fixed but never searched: every trial is scored on
the same rows.

An enqueued categorical value must be one of the choices; a number may lie outside its range
(Optuna allows it, with a warning); either way the resulting config must pass ``TrialConfig``.

A parameter is ``choices`` (categorical) or ``low``/``high`` (int when both bounds are
integers and the field is an int, else float; ``log`` and ``step`` optional). ``when`` makes it
conditional: ``{key: value}``, ``{key: [values]}`` or ``{key: {gt|ge|lt|le|ne|in|not_in: x}}``
on an earlier parameter or a fixed key; all entries of a mapping must hold, and a list of
mappings means any one of them. An inactive parameter keeps its
fixed or ``TrialConfig`` default value. Every key, value and bound is checked against
``TrialConfig`` before a search starts (``ConfigError`` naming file, key and reason), and so are
seeded random combinations of the parameters, so the sampler can never produce an invalid config.

ASHA (``scheduler``): ``reduction_factor`` (keeps 1 in that many per rung) and either
``grace_period`` (epochs every trial runs before it can be stopped) or ``grace_fraction`` (the
same as a fraction of the trial's epochs, in (0, 1]: grace = ceil(fraction x epochs), so it
follows ``--epochs``); without either, search.run's default: ``grace_fraction`` 0.33 and
reduction factor 2 (tuned on the learning-curve tables, docs/search.md).

Recording mode (learning-curve tables, ``bench/curves/``): ``sampler: {name: grid}`` trains every
point of the grid (Optuna's ``GridSampler``; ``trials`` defaults to the grid size and may not
exceed it), ``sampler: {name: random}`` draws with Optuna's ``RandomSampler``, and
``scheduler: none`` turns early stopping off (every trial runs all its epochs). The grid is the
product of every parameter's ``choices``; a range joins it only with explicit ``grid:`` values
(``lr: {low: 1.0e-4, high: 3.0e-3, log: true, grid: [3.0e-4, 1.0e-3]}``), and ``grid:`` is refused
under any other sampler. A ``when`` condition must hold at every grid point (a parameter inactive
at some points would train the same configuration twice), and every grid point must pass
``TrialConfig``.
"""

from search.optimize.space.check import check_space  # noqa: F401
from search.optimize.space.model import (  # noqa: F401
    CHECK_DRAWS,
    CHECK_FORCED,
    DATA_FIELDS,
    DEFAULT_TRIALS,
    FINAL_KEYS,
    MAX_GRID,
    OPS,
    PARAM_KEYS,
    SAMPLER_KEYS,
    SAMPLERS,
    SCHEDULER_KEYS,
    SCHEDULERS,
    TOP_KEYS,
    UNSEARCHABLE,
    Condition,
    Param,
    SearchSpace,
    SuggestTrial,
    _DrawTrial,
)
from search.optimize.space.parse import (  # noqa: F401
    default_space_path,
    load_space,
    parse_space,
)
