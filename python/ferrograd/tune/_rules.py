"""The recipe's and the learning-rate search's rules and budgets: module constants, each
the default of a keyword argument of the same name (see `ferrograd.tune`)."""

from __future__ import annotations

START_LR = 0.001
"""Where the learning-rate search starts ("start at 0.001, then double or halve")."""

DIVERGENCE_FACTOR = 2.0
"""A trial is abandoned as diverged when a loss exceeds this many times the untrained
model's validation loss (or is NaN/inf): "a loss well above its start"."""

PATIENCE = 2
"""Doublings (or halvings) in a row without improving the metric that end the search."""

OVERFIT_GAP = 0.25
"""Overfit when (val_loss - train_loss) / val_loss exceeds this at the best epoch."""

UNDERFIT_GAP = 0.0
"""Underfit when (val_loss - train_loss) / val_loss is below this: training not better than
validation."""

RISE_TOLERANCE = 0.02
"""Relative worsening of the validation figure that counts as rising: within a trial, from its
best epoch to its last (the *val_rise* rule); between trials, from a narrower network's best
val_loss to a wider one's (the *capacity* rule)."""

MIN_IMPROVEMENT = 0.01
"""Relative change that counts as an improvement (or a fall of the training loss)."""

OVERFIT_PATIENCE = 0
"""While the width grows (step 4), doublings tried after an overfitting rule fires before the
recipe concludes: the signal stands unless one of them beats the best metric so far by
`MIN_IMPROVEMENT`. 0 (the procedure as written: grow until it overfits) by measurement: on
the MNIST sample, 1 let the SELU recipe grow past a chance loss at width 44 (val_loss 0.1744
-> 0.1687, val_acc 0.953 -> 0.951) but sent the standard one to width 1408, whose slow
trials used the budget the learning-rate retune needed (0.0970 -> 0.1028; benches/README)."""

GROWTH_PATIENCE = 2
"""Width doublings in a row that improve neither the metric nor the training loss by
`MIN_IMPROVEMENT` before the recipe stops growing: capacity is not the limit."""

PARAM_MARGIN = 1.1
"""Step 1's starting width: the smallest whose parameter count is at least this many times the
number of training samples."""

AUTO_STEPS = 1000
"""With `epochs=None`, each trial trains for about this many optimizer steps, as whole epochs
between `AUTO_MIN_EPOCHS` and `AUTO_MAX_EPOCHS` (20 epochs of 800 samples in batches of 32;
4 epochs of 8,000; 2 of 48,000)."""

AUTO_MIN_EPOCHS = 2
AUTO_MAX_EPOCHS = 20

STOP_PATIENCE = 3
"""Recipe trials stop when the metric has not improved for this many epochs."""
