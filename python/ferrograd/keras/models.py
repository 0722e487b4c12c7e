"""Keras's models on ferrograd: `Sequential`, the functional `Model(inputs, outputs)`,
subclassed `Model`s, and their training API (`compile`, `fit`, `evaluate`, `predict`,
`train_on_batch`, ...), `summary`, `save` / `load_model`, `get_weights` / `set_weights`.

A model is an ordinary `fg.nn.Module`: its layers are its children (named by their Keras
names, so `state_dict()` keys read `dense.weight`, `batch_normalization.gamma`), its
weights are ordinary tensors, `.to("gpu")` moves it and `fg.save(model, path)` stores it.
`fit` runs the same fused kernels as `ferrograd.models`' builders: a Dense layer is one
`linear` call with its activation in the epilogue, a BatchNormalization followed by a ReLU
one fused call, and the loss on a final softmax is computed from its logits.

`fit` prints the progress log of `ferrograd.train` (Keras's classic format):

    Train on 8000 samples, validate on 2000 samples
    Epoch 1/5
    8000/8000 [==============================] - 1s - loss: 0.3383 - accuracy: 0.8993 - val_loss: ...

Saving is data only: `model.save(path)` writes the weights, the architecture as Keras's
JSON config and the compile settings and optimizer state to a safetensors file;
`load_model(path)` builds only ferrograd.keras's classes (others only when passed as
`custom_objects`), and checks the file's tensors against the architecture before creating
any weight.
"""

from __future__ import annotations

from ._model import Functional, Model, Sequential, save_model
from ._saving import clone_model, load_model, model_from_config, model_from_json

__all__ = [
    "Model",
    "Functional",
    "Sequential",
    "load_model",
    "save_model",
    "model_from_json",
    "model_from_config",
    "clone_model",
]
