"""Keras's model-building and training API on ferrograd's engine.

Keras 2/3 scripts for dense networks run with `keras` replaced by `ferrograd.keras` in the
import lines:

>>> from ferrograd.keras.models import Sequential
>>> from ferrograd.keras.layers import Dense, Dropout
>>> from ferrograd.keras.optimizers import RMSprop
>>> model = Sequential([Dense(512, activation="relu", input_shape=(784,)), Dropout(0.2),
...                     Dense(10, activation="softmax")])
>>> model.compile(loss="categorical_crossentropy", optimizer=RMSprop(), metrics=["accuracy"])
>>> history = model.fit(x_train, y_train, batch_size=128, epochs=5, validation_data=(x_test, y_test))
>>> score = model.evaluate(x_test, y_test, verbose=0)

Submodules as Keras names them: `models`, `layers`, `optimizers` (with `schedules`),
`losses`, `metrics`, `activations`, `initializers`, `regularizers`, `constraints`,
`callbacks`, `utils` (with `np_utils`), `backend`, `saving`; `Input`, `Model`, `Sequential`
at the top.

A Keras model here is an ordinary `fg.nn.Module` (parameters, `state_dict`, `.to(device)`,
`fg.save`), trained by ferrograd's kernels; Keras's defaults and formulas are kept
(optimizer defaults and update rules, BatchNormalization's momentum, initializers, losses
on probabilities), and each module says where they are implemented through ferrograd's.
"""

from __future__ import annotations

from . import (
    activations,
    backend,
    callbacks,
    constraints,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    saving,
    utils,
)
from .layers import Input, InputLayer, Layer
from .models import Model, Sequential

__version__ = "3.0.0-ferrograd"

__all__ = [
    "Input",
    "InputLayer",
    "Layer",
    "Model",
    "Sequential",
    "activations",
    "backend",
    "callbacks",
    "constraints",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "saving",
    "utils",
]
