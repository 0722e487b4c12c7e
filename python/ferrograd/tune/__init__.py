"""Hyperparameter tuning: the learning-rate search and the tuning recipe.

>>> search = fg.tune.learning_rate(lambda: fg.models.standard(20, 4, width=64), x, y, epochs=3)
>>> search.best_lr
0.004
>>> result = fg.tune.recipe(x, y, architecture="standard", time_budget=120)
>>> result.model, result.config["lr"], print(result.report)

**The learning-rate search** (`learning_rate`) starts at 0.001 and doubles the rate while the
deciding metric (`metric`, "val_loss" by default) improves, stopping after `patience`
doublings in a row without improvement or at the first diverged trial; when no doubling beat
0.001 it halves from there by the same rule. Every trial builds the model afresh with the
same seed (so the same initial weights) and trains it with the same data order for the same
budget (`epochs`), so trials differ only in the rate; it is judged on the metric after its
last epoch. A trial is abandoned as *diverged* when a loss (training or validation, checked
after every epoch) is NaN or infinite, or above `divergence_factor` times the untrained
model's validation loss ("a loss well above its start"). A diverged rate is never returned.

**The recipe** (`recipe`) runs the seven steps as one call:

1. width: the smallest width whose parameter count is at least `param_margin` times the
   number of training samples ("slightly more parameters than samples"); the depth is fixed
   for the whole recipe (`depth`: 2 hidden layers for "standard", 2 residual blocks of 2
   layers for "residual", 4 hidden layers for "selu"), and capacity grows by width only;
2. no regularization: no batchnorm, no dropout;
3. the learning-rate search above, on that network (at most `lr_trials` trials);
4. the width doubles until the network overfits (or `max_width`, or growth stalls); when an
   overfitting rule fires, `overfit_patience` more doublings (0 by default) confirm it first
   (a wider network that beats the best metric so far means the signal was noise);
5. batchnorm is added at that width, and the width doubles again at most `bn_growth` times
   until it overfits again (skipped for "selu": self-normalizing networks use no batchnorm);
6. dropout is added: `dropout_rates` in turn (0.2 then 0.3; AlphaDropout 0.05 then 0.1 for
   "selu") until the network no longer overfits or the metric gets worse;
7. the verdict on the best trial (by `metric`): well tuned, overfit or underfit.

Recipe trials use early stopping: each trains for at most `epochs` epochs and stops when the
metric has not improved for `stop_patience` epochs, keeping the best epoch's weights, whose
figures (loss, val_loss, accuracies) the trial records.

**The rules**, each a keyword argument (defaults are the module constants below); every
printed decision names the rule that fired and its numbers:

- overfit, *val_rise*: within a trial, the metric stopped improving for `stop_patience`
  epochs and its last value is worse than its best by more than `rise_tolerance`
  (relative), while the training loss still fell by more than `min_improvement` (relative).
  While the width grows (steps 4 and 5) it counts only when the doubling did not improve the
  metric by more than `min_improvement`, and not at the starting width: early stopping
  already keeps the best epoch, so overfitting in time alone is no reason to stop growing
  while capacity still helps;
- overfit, *gap*: at the best epoch, (val_loss - train_loss) / val_loss > `overfit_gap`, where
  `train_loss` is measured as val_loss is (eval mode, the kept weights) on as many training
  samples as there are validation samples; while the
  width grows it too counts only when the doubling did not improve the metric by more than
  `min_improvement` (a gap alone did not mean that more capacity stops helping: on the
  bundled MNIST sample the gap passed 25% at width 44 while doubling kept improving
  val_loss; the final verdict applies it as is);
- overfit, *capacity*: a wider network's best val_loss is worse than the narrower one's by
  more than `rise_tolerance` (relative) while its training loss is lower (checked during
  the growth of step 4);
- underfit: (val_loss - train_loss) / val_loss < `underfit_gap` (the training loss is not better
  than the validation loss), or no overfitting rule fires;
- growth stalls: `growth_patience` doublings in a row improve neither the metric nor the
  training loss by more than `min_improvement` (relative): capacity is not the limit.

Both functions append each finished trial to a JSON-lines file (`log=`); rerun with the same
file and settings and the trials found there are not run again, so an interrupted search
(Ctrl-C, a crash) resumes where it stopped. `time_budget` (seconds) is checked before every
trial: a trial is started only when the time left exceeds the last trial's duration (the
first trial always runs to its end); a later trial still running when the time runs out is
cut between two batches, is shown as cut, does not count and is not logged (a rerun with
the same log and more time trains it in full). The per-trial budget is `epochs`, or
`steps` optimizer steps. Trials run on `device` (the builder's choice when None).

Problems: integer labels train with softmax cross-entropy ("cross_entropy"), float targets
with MSE ("mse", no output activation), and `loss="binary_cross_entropy"` takes 0/1 targets
(the recipe's networks then end in a Sigmoid).
"""

from __future__ import annotations

# The modules: `_rules` (the rules' defaults), `_trial` (one trial: the problem, the clock,
# the log, `_run`), `_lr` (the learning-rate search), `_recipe` (the seven steps), `_report`
# (the Markdown report and the plots).
from .. import train as _train  # noqa: F401  (the training layer; its `fit` runs every trial)
from . import _lr as _lr
from . import _recipe as _recipe
from . import _report as _report
from . import _rules as _rules
from . import _trial as _trial
from ._lr import LRSearch, learning_rate
from ._recipe import RecipeResult, build, recipe
from ._recipe import _Recipe as _Recipe
from ._recipe import _residual_without_batchnorm as _residual_without_batchnorm
from ._rules import AUTO_MAX_EPOCHS as AUTO_MAX_EPOCHS
from ._rules import AUTO_MIN_EPOCHS as AUTO_MIN_EPOCHS
from ._rules import (
    AUTO_STEPS,
    DIVERGENCE_FACTOR,
    GROWTH_PATIENCE,
    MIN_IMPROVEMENT,
    OVERFIT_GAP,
    OVERFIT_PATIENCE,
    PARAM_MARGIN,
    PATIENCE,
    RISE_TOLERANCE,
    START_LR,
    UNDERFIT_GAP,
)
from ._rules import STOP_PATIENCE as STOP_PATIENCE
from ._trial import strict_json as strict_json

__all__ = [
    "learning_rate",
    "recipe",
    "build",
    "LRSearch",
    "RecipeResult",
    "START_LR",
    "DIVERGENCE_FACTOR",
    "PATIENCE",
    "OVERFIT_GAP",
    "UNDERFIT_GAP",
    "RISE_TOLERANCE",
    "MIN_IMPROVEMENT",
    "GROWTH_PATIENCE",
    "OVERFIT_PATIENCE",
    "PARAM_MARGIN",
    "AUTO_STEPS",
]
