"""Keras's training API of a model (see `ferrograd.keras.models`): `compile`, `fit`,
`evaluate`, `predict`, `train_on_batch` / `test_on_batch` and the data handling they share
(arrays to tensors, targets, sample and class weights, metrics), as `_Trainer`, the base of
`Model`, with the helpers of the training loop."""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _core
from .._core import Tensor
from ..autograd import no_grad
from ..train import ProgressBar, _Interrupt
from . import callbacks as _callbacks
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from .layers import Layer

if TYPE_CHECKING:
    from ._graph import _Graph


def _device_of(model) -> str:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return "cpu"


def _float_tensor(a, device: str = "cpu") -> Tensor:
    if isinstance(a, Tensor):
        t = a if a.dtype.is_floating_point else a.float()
    else:
        arr = np.asarray(a)
        if arr.dtype == object:
            raise TypeError("fit/evaluate/predict: x must be numeric arrays (got an object array)")
        t = _core.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return t if t.device == device else t.to(device)


def _np(a) -> np.ndarray:
    return a.detach().numpy() if isinstance(a, Tensor) else np.asarray(a)


def _reject_iterators(x, what: str) -> None:
    if x is None:
        raise ValueError(f"{what}: x is required")
    if hasattr(x, "__next__") or (
        hasattr(x, "__iter__") and hasattr(x, "__len__") and hasattr(x, "on_epoch_end")
    ):
        raise TypeError(
            f"{what}: generators and keras.utils.Sequence inputs are not supported; pass arrays (x, y), or "
            "loop over your batches with train_on_batch"
        )


# ---------------------------------------------------------------------------- training


class _Trainer(Layer):
    """The training half of `Model` (its base class): `compile`, `fit`, `evaluate`,
    `predict`, `train_on_batch`, `test_on_batch`, `metrics`. `Model` adds the rest (the
    functional graph, calling, summary, configs and saving)."""

    # set through object.__setattr__ in Model.__init__ (declared for type checkers)
    _compiled: dict[str, Any] | None
    optimizer: Any
    stop_training: bool
    history: Any
    loss: Any

    if TYPE_CHECKING:  # Model's (a functional model's graph, and running it)
        _graph: _Graph | None

        def _run(self, xs: list[Tensor], logits: bool) -> tuple[list[Tensor], str | None]: ...

    # ---- compile ------------------------------------------------------------------------
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile="auto",
        auto_scale_loss: bool = True,
        **kwargs,
    ) -> None:
        """Sets the optimizer (a name, with Keras's defaults, or an instance), the loss (a
        name, a Loss, or a function of (y_true, y_pred)) and the metrics for `fit` and
        `evaluate`. `run_eagerly`, `jit_compile` and `steps_per_execution` change nothing
        here (ferrograd runs eagerly, each op one kernel)."""
        for k in ("sample_weight_mode", "target_tensors", "distribute", "experimental_steps_per_execution"):
            kwargs.pop(k, None)
        if kwargs:
            raise TypeError(f"compile: unexpected arguments {sorted(kwargs)}")
        opt = _optimizers.get(optimizer)
        loss_obj, loss_weight = None, 1.0
        if isinstance(loss, (list, tuple)):
            if len(loss) != 1:
                raise ValueError("compile: models with several outputs (one loss each) are not supported yet")
            loss = loss[0]
        if isinstance(loss, dict):
            if len(loss) != 1:
                raise ValueError("compile: models with several outputs (one loss each) are not supported yet")
            loss = next(iter(loss.values()))
        if loss is not None:
            loss_obj = _losses.get(loss)
        if loss_weights is not None:
            lw = loss_weights
            if isinstance(lw, dict):
                lw = list(lw.values())
            if isinstance(lw, (list, tuple)):
                if len(lw) != 1:
                    raise ValueError("compile: loss_weights for several outputs are not supported yet")
                lw = lw[0]
            loss_weight = float(lw)
        specs = _metric_list(metrics, "metrics")
        wspecs = _metric_list(weighted_metrics, "weighted_metrics")
        for m in specs + wspecs:  # unknown names fail here, not at fit
            if not (isinstance(m, str) and m.lower() in ("accuracy", "acc")):
                _metrics.get(m)
        object.__setattr__(self, "optimizer", opt)
        object.__setattr__(self, "loss", loss)
        object.__setattr__(
            self,
            "_compiled",
            {
                "loss": loss_obj,
                "loss_spec": loss,
                "loss_weight": loss_weight,
                "metric_specs": specs,
                "weighted_specs": wspecs,
                "metrics": None,  # resolved at the first fit/evaluate (needs the shapes)
                "weighted": None,
            },
        )

    @property
    def compiled(self) -> bool:
        """Whether `compile` was called."""
        return self._compiled is not None

    @property
    def metrics(self) -> list[_metrics.Metric]:
        """The compiled metrics (after the first fit/evaluate), weighted ones last."""
        c = self._compiled
        if c is None or c["metrics"] is None:
            return []
        return list(c["metrics"]) + list(c["weighted"])

    @property
    def metrics_names(self) -> list[str]:
        """ "loss" and the metrics' names, in the order `evaluate` returns them."""
        return ["loss", *[m.name for m in self.metrics]]

    def _require_compiled(self, what: str) -> dict:
        c = self._compiled
        if c is None:
            raise RuntimeError(f"You must call `compile()` before using the model ({what}).")
        if c["loss"] is None and what != "predict":
            raise ValueError(f"{what}: the model was compiled without a loss; pass loss= to compile")
        if self._graph is not None and len(self._graph.outputs) > 1:
            raise ValueError(f"{what}: models with several outputs are not supported by fit/evaluate yet")
        return c

    def _resolve_metrics(self, c: dict, y_shape: tuple) -> None:
        if c["metrics"] is not None:
            return
        out_shape = tuple(self._out_shapes()[0]) if self._out_shapes() else ()
        y_shape = (None, *tuple(y_shape)[1:])

        def make(spec):
            if isinstance(spec, str) and spec.lower() in ("accuracy", "acc"):
                return _metrics.accuracy_for(spec, c["loss"], y_shape, out_shape)
            return _metrics.get(spec)

        plain = [make(s) for s in c["metric_specs"]]
        weighted = [make(s) for s in c["weighted_specs"]]
        c["metrics"], c["weighted"] = plain, weighted
        for m in weighted:
            if m.name in [x.name for x in plain]:
                m.name = "weighted_" + m.name

    # ---- data ---------------------------------------------------------------------------
    def _input_tensors(self, x, device: str) -> list[Tensor]:
        """`x` as the list of float tensors the model's inputs take."""
        n_in = len(self._graph.inputs) if self._graph is not None else 1
        if isinstance(x, dict):
            if self._graph is None:
                raise TypeError("a dict of inputs needs a functional model (it maps input names to arrays)")
            missing = [n for n in self._graph.input_names if n not in x]
            if missing:
                raise ValueError(
                    f"missing inputs {missing}; the model's inputs are {self._graph.input_names}"
                )
            return [_float_tensor(x[n], device) for n in self._graph.input_names]
        if isinstance(x, (list, tuple)) and n_in > 1:
            if len(x) != n_in:
                raise ValueError(f"the model has {n_in} inputs but got a list of {len(x)} arrays")
            return [_float_tensor(a, device) for a in x]
        if isinstance(x, (list, tuple)) and x and isinstance(x[0], (Tensor, np.ndarray)) and len(x) == 1:
            return [_float_tensor(x[0], device)]
        return [_float_tensor(x, device)]

    def _ensure_built(self, xs: list[Tensor]) -> None:
        if self.built:
            return
        if self._graph is not None:
            self._build_now()
            return
        # a subclassed model: its layers build on a first (inference) call
        was = [(m, m.training) for m in self.modules()]
        self.train(False)
        try:
            with no_grad():
                out = self.call(xs[0][:2] if len(xs) == 1 else [x[:2] for x in xs])
        finally:
            for m, mode in was:
                object.__setattr__(m, "training", mode)
        object.__setattr__(self, "built", True)
        object.__setattr__(
            self, "_build_shape", _layers._plain_shape(_layers._shape_of(xs[0] if len(xs) == 1 else xs))
        )
        outs = out if isinstance(out, (list, tuple)) else [out]
        object.__setattr__(self, "_subclass_out_shapes", [(None, *tuple(o.shape)[1:]) for o in outs])

    def _out_shapes(self) -> list[tuple]:
        if self._graph is not None:
            return [t.shape for t in self._graph.outputs]
        return list(self.__dict__.get("_subclass_out_shapes", []))

    def _targets(self, c: dict, y, device: str, n: int) -> Tensor:
        """`y` in the form the compiled loss takes (labels int64 on the host; floats on
        `device`)."""
        loss = c["loss"]
        arr = _np(_single_target(y))
        if arr.shape[0] != n:
            raise ValueError(
                f"Data cardinality is ambiguous: x sizes: {n}, y sizes: {arr.shape[0]}. "
                "Make sure all arrays contain the same number of samples."
            )
        out_shape = tuple(self._out_shapes()[0]) if self._out_shapes() else ()
        if isinstance(loss, _losses.SparseCategoricalCrossentropy):
            if arr.ndim == len(out_shape) and arr.ndim > 1 and arr.shape[-1] == 1:
                arr = arr.reshape(arr.shape[:-1])
            if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
                raise ValueError("fit: sparse_categorical_crossentropy labels contain NaN or inf")
            labels = arr.astype(np.int64)
            n_classes = out_shape[-1] if out_shape else None
            if labels.size and n_classes:
                valid = (labels >= 0) & (labels < n_classes)
                if loss.ignore_class is not None:
                    valid |= labels == int(loss.ignore_class)
                if not valid.all():
                    raise ValueError(
                        f"Received a label value of {labels[~valid].reshape(-1)[0]} which is outside the "
                        f"valid range of [0, {n_classes})"
                    )
            return _core.from_numpy(np.ascontiguousarray(labels))
        if isinstance(loss, _losses.CategoricalCrossentropy):
            arr = arr.astype(np.float32)
            if out_shape and arr.ndim == 1:
                raise ValueError(
                    f"categorical_crossentropy takes one-hot targets of shape (N, {out_shape[-1]}), got "
                    "labels of "
                    f"shape {arr.shape}: use keras.utils.to_categorical(y) or sparse_categorical_crossentropy"
                )
            if out_shape and arr.shape[1:] != tuple(out_shape[1:]):
                raise ValueError(
                    f"categorical_crossentropy: targets of shape {arr.shape} do not match the model's output "
                    f"{out_shape}"
                )
            # exact one-hot rows train through the fused labels kernel (the same value)
            if arr.ndim == 2 and self._labels_ok(c) and _is_one_hot(arr):
                return _core.from_numpy(np.ascontiguousarray(arr.argmax(axis=1).astype(np.int64)))
            return _float_tensor(arr, device)
        arr = arr.astype(np.float32)
        if out_shape and arr.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
            arr = arr.reshape(*arr.shape, 1)
        return _float_tensor(arr, device)

    @staticmethod
    def _labels_ok(c: dict) -> bool:
        """Whether every metric reads labels as well as one-hot targets."""
        fine = (
            _metrics.CategoricalAccuracy,
            _metrics.SparseCategoricalAccuracy,
            _metrics.TopKCategoricalAccuracy,
        )
        for m in (c["metrics"] or []) + (c["weighted"] or []):
            if isinstance(m, fine):
                continue
            if isinstance(m, _metrics.LossMetric) and isinstance(m.loss, _losses.CategoricalCrossentropy):
                continue
            return False
        return True

    def _sample_weights(
        self, y_np: np.ndarray, class_weight, sample_weight, n: int, device: str
    ) -> Tensor | None:
        w = None
        if sample_weight is not None:
            w = np.asarray(_np(sample_weight), dtype=np.float32).reshape(-1)
            if w.shape[0] != n:
                raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} samples")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(
                    f"class_weight must be a dict of class: weight, got {type(class_weight).__name__}"
                )
            y = np.asarray(y_np)
            if y.ndim > 1 and y.shape[-1] > 1:
                cls = y.argmax(axis=-1)
            else:
                cls = np.round(y.reshape(y.shape[0], -1)[:, 0]).astype(np.int64)
            cw = np.ones(cls.shape[0], dtype=np.float32)
            for k, v in class_weight.items():
                cw[cls == int(k)] = float(v)
            w = cw if w is None else w * cw
        return None if w is None else _float_tensor(w, device)

    # ---- steps --------------------------------------------------------------------------
    def _loss_value(self, c: dict, y: Tensor, out: _metrics.ModelOutput, sw: Tensor | None) -> Tensor:
        loss: _losses.Loss = c["loss"]
        if loss._absorbs(out.final):
            if sw is None and loss.reduction == "sum_over_batch_size":
                value = loss._logits_values(y, out.logits, mean=True)
            else:
                value = loss.reduce(loss._logits_values(y, out.logits, mean=False), sw)
        else:
            value = loss.reduce(loss.call(y, out.value()), sw)
        return value if c["loss_weight"] == 1.0 else value * c["loss_weight"]

    def _extra_losses(self, layers: list[Layer]) -> Tensor | None:
        """The regularization penalties and `add_loss` terms of the last forward."""
        total = None
        for lay in layers:
            for term in lay._regularization_terms() + lay._losses:
                total = term if total is None else total + term
        return total

    def _clear_losses(self, layers: list[Layer]) -> None:
        for lay in layers:
            if lay._losses:
                lay._losses.clear()

    def _train_step(self, c: dict, xs: list[Tensor], y: Tensor, sw: Tensor | None, layers: list[Layer]):
        self._clear_losses(layers)
        outs, final = self._run(xs, logits=True)
        out = _metrics.ModelOutput(outs[0], final)
        total = self._loss_value(c, y, out, sw)
        extra = self._extra_losses(layers)
        if extra is not None:
            total = total + extra
        opt = self.optimizer
        for p in opt._vars:
            p.grad = None
        total.backward()
        opt._fit_step()
        for lay in layers:
            if lay._constrained:
                lay._apply_constraints()
        with no_grad():
            for m in c["metrics"]:
                m._update_output(y, out, None)
            for m in c["weighted"]:
                m._update_output(y, out, sw)
        return total.detach()

    def _test_step(self, c: dict, xs: list[Tensor], y: Tensor, sw: Tensor | None, layers: list[Layer]):
        self._clear_losses(layers)
        with no_grad():
            outs, final = self._run(xs, logits=True)
            out = _metrics.ModelOutput(outs[0], final)
            total = self._loss_value(c, y, out, sw)
            extra = self._extra_losses(layers)
            if extra is not None:
                total = total + extra
            for m in c["metrics"]:
                m._update_output(y, out, None)
            for m in c["weighted"]:
                m._update_output(y, out, sw)
        return total

    def _prepare(self, c: dict, x, y, device: str, what: str) -> tuple[list[Tensor], Tensor]:
        _reject_iterators(x, what)
        xs = self._input_tensors(x, device)
        n = xs[0].shape[0]
        for t in xs[1:]:
            if t.shape[0] != n:
                raise ValueError(
                    f"{what}: the inputs have different numbers of samples ({[t.shape[0] for t in xs]})"
                )
        self._ensure_built(xs)
        if self._graph is not None:
            for t, kt in zip(xs, self._graph.inputs):
                want = kt.shape[1:]
                if len(want) != t.ndim - 1 or any(
                    w is not None and w != d for w, d in zip(want, tuple(t.shape)[1:])
                ):
                    raise ValueError(
                        f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                        "shape=(None, "
                        f"{', '.join(str(d) for d in want)}), found shape={tuple(t.shape)}"
                    )
        if y is None:
            raise ValueError(f"{what}: y is required (the targets)")
        y = _single_target(y)
        self._resolve_metrics(c, np.shape(_np(y)))  # before _targets, which asks the metrics
        yt = self._targets(c, y, device, n)
        return xs, yt

    def _reset_metrics(self, c: dict) -> None:
        for m in c["metrics"] + c["weighted"]:
            m.reset_state()

    def _logs(self, c: dict, loss_sum, seen: int) -> dict:
        logs = {"loss": float(loss_sum.item() if isinstance(loss_sum, Tensor) else loss_sum) / max(seen, 1)}
        for m in c["metrics"] + c["weighted"]:
            logs[m.name] = float(m.result().item())
        return logs

    # ---- fit ----------------------------------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch: int = 0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
        **kwargs,
    ) -> _callbacks.History:
        """Trains the model for `epochs` epochs on (x, y) and returns a `History` (its
        `.history` maps "loss", the metrics and their "val_" forms to per-epoch lists).

        As Keras's: `validation_split` holds out the last fraction of the samples (before
        shuffling); `validation_data=(x_val, y_val[, sample_weight])` gives the set;
        `class_weight` ({class: weight}) and `sample_weight` weigh the loss; `shuffle`
        reshuffles each epoch (with ferrograd's generator: `fg.manual_seed` repeats a run);
        `verbose` 0 silent, 1 progress bar, 2 one line per epoch. Ctrl-C stops after the
        current batch, keeping the weights."""
        if "nb_epoch" in kwargs:  # Keras 1's name
            epochs = kwargs.pop("nb_epoch")
        if kwargs:
            raise TypeError(f"fit: unexpected arguments {sorted(kwargs)}")
        if steps_per_epoch is not None or validation_steps is not None:
            raise ValueError(
                "fit: steps_per_epoch/validation_steps go with generators, which are not supported"
            )
        c = self._require_compiled("fit")
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"fit: batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be an integer >= 0, got {epochs!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        verbose = 1 if verbose == "auto" else int(verbose)
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "fit")
        n = xs[0].shape[0]
        y_np = _np(_single_target(y))
        sw = self._sample_weights(y_np, class_weight, sample_weight, n, device)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)"
                )
            vx, vy = self._prepare(c, validation_data[0], validation_data[1], device, "fit (validation_data)")
            vsw = None
            if len(validation_data) == 3 and validation_data[2] is not None:
                vsw = self._sample_weights(
                    _np(validation_data[1]), None, validation_data[2], vx[0].shape[0], device
                )
            val = (vx, vy, vsw)
        elif validation_split > 0.0:
            split = int(math.floor(n * (1.0 - validation_split)))
            if split == 0 or split == n:
                raise ValueError(
                    f"fit: validation_split={validation_split} leaves no training or no validation samples"
                )
            val = ([t[split:] for t in xs], yt[split:], None if sw is None else sw[split:])
            xs, yt, sw = [t[:split] for t in xs], yt[:split], None if sw is None else sw[:split]
            n = split
        opt: _optimizers.Optimizer = self.optimizer
        opt._bind(list(self.parameters()))
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        history = _callbacks.History()
        cbs = _callbacks.CallbackList(
            [*(callbacks or []), history],
            self,
            {"verbose": verbose, "epochs": epochs, "steps": math.ceil(n / batch_size)},
        )
        out = sys.stdout
        if verbose:
            extra = f", validate on {val[0][0].shape[0]} samples" if val is not None else ""
            out.write(f"Train on {n} samples{extra}\n")
        object.__setattr__(self, "stop_training", False)
        has_bn = any(isinstance(m, _layers.BatchNormalization) for m in layers)
        was_training = self.training
        logs: dict = {}
        cbs.call("on_train_begin", {})
        with _Interrupt() as interrupt:
            try:
                for epoch in range(initial_epoch, epochs):
                    if verbose:
                        out.write(f"Epoch {epoch + 1}/{epochs}\n")
                        out.flush()
                    cbs.call("on_epoch_begin", epoch, {})
                    self.train(True)
                    self._reset_metrics(c)
                    bar = ProgressBar(n, out) if verbose == 1 else None
                    order = _core.randperm(n) if shuffle else None
                    seen, loss_sum = 0, None
                    for b, idx in enumerate(_batches(n, batch_size, order, has_bn)):
                        cbs.call("on_train_batch_begin", b, {})
                        xb = [t[idx] for t in xs]
                        yb = yt[idx]
                        swb = None if sw is None else sw[idx]
                        loss = self._train_step(c, xb, yb, swb, layers)
                        k = xb[0].shape[0]
                        seen += k
                        with no_grad():
                            loss_sum = loss * float(k) if loss_sum is None else loss_sum + loss * float(k)
                        if cbs.batch_hooks or (bar is not None and bar.due()):
                            blogs = self._logs(c, loss_sum, seen)
                            if bar is not None:
                                bar.update(seen, blogs)
                            cbs.call("on_train_batch_end", b, blogs)
                        if interrupt.hit or self.stop_training:
                            break
                    logs = self._logs(c, loss_sum, seen) if seen else {"loss": float("nan")}
                    if (
                        val is not None
                        and not interrupt.hit
                        and (epoch + 1) % _freq(validation_freq, epoch) == 0
                    ):
                        vlogs = self._evaluate_arrays(
                            c, *val, max(validation_batch_size or batch_size, 256), layers
                        )
                        logs.update({"val_" + k: v for k, v in vlogs.items()})
                        self.train(True)
                    if bar is not None:
                        bar.finish(seen, logs)
                    elif verbose == 2:
                        out.write(f"{seen}/{n} - {ProgressBar.fmt_logs(logs)[3:]}\n")
                    if interrupt.hit:
                        history.interrupted = True
                        history.on_epoch_end(epoch, logs)
                        if verbose:
                            out.write(
                                "Interrupted: stopped after the current batch; the model keeps its weights.\n"
                            )
                        break
                    cbs.call("on_epoch_end", epoch, logs)
                    if self.stop_training:
                        break
            finally:
                self.train(was_training)
        cbs.call("on_train_end", logs)
        object.__setattr__(self, "history", history)
        return history

    def _evaluate_arrays(self, c, xs, yt, sw, batch_size, layers, cbs=None) -> dict:
        was = self.training
        self.train(False)
        self._reset_metrics(c)
        n = xs[0].shape[0]
        loss_sum: Any = 0.0
        try:
            for b, sl in enumerate(_batches(n, batch_size, None, False)):
                if cbs is not None:
                    cbs.call("on_test_batch_begin", b, {})
                k = min(sl.stop, n) - sl.start
                loss = self._test_step(c, [t[sl] for t in xs], yt[sl], None if sw is None else sw[sl], layers)
                loss_sum = loss_sum + loss * float(k)
                if cbs is not None and cbs.batch_hooks:
                    cbs.call("on_test_batch_end", b, self._logs(c, loss_sum, min(sl.stop, n)))
        finally:
            self.train(was)
        return self._logs(c, loss_sum, n)

    # ---- evaluate / predict -------------------------------------------------------------
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict: bool = False,
        **kwargs,
    ):
        """The loss (regularization included, as Keras reports it) and the metrics on (x, y),
        in inference mode: a scalar when there are no metrics, else `[loss, metric, ...]`
        (`model.metrics_names` order), or a dict with `return_dict=True`."""
        if kwargs:
            raise TypeError(f"evaluate: unexpected arguments {sorted(kwargs)}")
        if steps is not None:
            raise ValueError("evaluate: steps goes with generators, which are not supported")
        c = self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"evaluate: batch_size must be a positive integer, got {batch_size}")
        verbose = 1 if verbose == "auto" else int(verbose)
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "evaluate")
        sw = self._sample_weights(_np(_single_target(y)), None, sample_weight, xs[0].shape[0], device)
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        cbs = _callbacks.CallbackList(callbacks, self, {"verbose": verbose, "steps": None})
        cbs.call("on_test_begin", {})
        start = time.perf_counter()
        logs = self._evaluate_arrays(c, xs, yt, sw, batch_size, layers, cbs)
        cbs.call("on_test_end", logs)
        if verbose:
            n = xs[0].shape[0]
            bar = ProgressBar(n, sys.stdout)
            bar.start = start
            bar.finish(n, logs)
        if return_dict:
            return logs
        values = [logs[k] for k in ["loss", *[m.name for m in self.metrics]]]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose="auto", steps=None, callbacks=None, **kwargs):
        """The model's outputs for `x` (inference mode) as a NumPy array (a list for several
        outputs)."""
        if kwargs:
            raise TypeError(f"predict: unexpected arguments {sorted(kwargs)}")
        if steps is not None:
            raise ValueError("predict: steps goes with generators, which are not supported")
        _reject_iterators(x, "predict")
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size}")
        xs = self._input_tensors(x, _device_of(self))
        self._ensure_built(xs)
        n = xs[0].shape[0]
        cbs = _callbacks.CallbackList(callbacks, self, {"verbose": 0, "steps": None})
        cbs.call("on_predict_begin", {})
        was = self.training
        self.train(False)
        parts: list[list[np.ndarray]] = []
        try:
            with no_grad():
                for b, sl in enumerate(_batches(n, max(batch_size, 1), None, False)):
                    cbs.call("on_predict_batch_begin", b, {})
                    outs, _ = self._run([t[sl] for t in xs], logits=False)
                    parts.append([o.numpy() for o in outs])
                    cbs.call("on_predict_batch_end", b, {})
        finally:
            self.train(was)
        cbs.call("on_predict_end", {})
        if not parts:
            shapes = self._out_shapes() or [(None,)]
            res = [np.zeros((0, *[d or 0 for d in s[1:]]), dtype=np.float32) for s in shapes]
        else:
            res = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
        return res[0] if len(res) == 1 else res

    def predict_on_batch(self, x):
        """`predict` on one batch."""
        return self.predict(x, batch_size=max(_n_rows(x, self), 1), verbose=0)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False):
        """One optimizer step on the batch (x, y); returns the loss and metrics of that batch
        (a scalar without metrics, a list, or a dict with `return_dict`)."""
        c = self._require_compiled("train_on_batch")
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "train_on_batch")
        sw = self._sample_weights(_np(_single_target(y)), class_weight, sample_weight, xs[0].shape[0], device)
        self.optimizer._bind(list(self.parameters()))
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        self._reset_metrics(c)
        was = self.training
        self.train(True)
        try:
            loss = self._train_step(c, xs, yt, sw, layers)
        finally:
            self.train(was)
        logs = self._logs(c, loss, 1)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """The loss and metrics on one batch, in inference mode."""
        c = self._require_compiled("test_on_batch")
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "test_on_batch")
        sw = self._sample_weights(_np(_single_target(y)), None, sample_weight, xs[0].shape[0], device)
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        logs = self._evaluate_arrays(c, xs, yt, sw, max(xs[0].shape[0], 1), layers)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def reset_metrics(self) -> None:
        """Resets the compiled metrics' state."""
        if self._compiled is not None and self._compiled["metrics"] is not None:
            self._reset_metrics(self._compiled)


def _freq(validation_freq, epoch: int) -> int:
    if isinstance(validation_freq, int) and validation_freq >= 1:
        return validation_freq
    if isinstance(validation_freq, (list, tuple)):
        return 1 if (epoch + 1) in validation_freq else 10**9
    raise ValueError(
        f"fit: validation_freq must be a positive int or a list of epochs, got {validation_freq!r}"
    )


def _batches(n: int, batch_size: int, order: Tensor | None, drop_single: bool):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if drop_single and stop - start == 1 and start > 0:
            return  # a batch of one cannot be batch-normalized in training
        yield slice(start, stop) if order is None else order[start:stop]


def _single_target(y):
    """The targets of a single-output model given as an array, a list of one, or a dict of one."""
    if isinstance(y, dict):
        if len(y) != 1:
            raise ValueError("several targets (a dict of outputs) are not supported yet")
        y = next(iter(y.values()))
    if isinstance(y, (list, tuple)) and len(y) == 1 and not np.isscalar(y[0]):
        y = y[0]
    return y


def _n_rows(x, model) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)) and model._graph is not None and len(model._graph.inputs) > 1:
        x = x[0]
    return int(np.shape(_np(x))[0]) if not isinstance(x, Tensor) else x.shape[0]


def _is_one_hot(arr: np.ndarray) -> bool:
    if arr.size == 0:
        return False
    return bool(np.all((arr == 0.0) | (arr == 1.0)) and np.all(arr.sum(axis=1) == 1.0))


def _metric_list(metrics, what: str) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        if len(metrics) != 1:
            raise ValueError(f"compile: {what} for several outputs are not supported yet")
        metrics = next(iter(metrics.values()))
    if (
        isinstance(metrics, (str, _metrics.Metric))
        or callable(metrics)
        and not isinstance(metrics, (list, tuple))
    ):
        return [metrics]
    out = list(metrics)
    if len(out) == 1 and isinstance(out[0], (list, tuple)):
        out = list(out[0])
    return out
