"""A functional model's layer graph (`Model(inputs, outputs)`): its symbolic inputs and
outputs, and its nodes in execution order (see `ferrograd.keras.models`)."""

from __future__ import annotations

from .layers import InputLayer, KerasTensor, Layer, Node


def _flatten_tensors(x, what: str) -> tuple[list[KerasTensor], list[str]]:
    if isinstance(x, KerasTensor):
        return [x], [x._keras_history[0].name]
    if isinstance(x, dict):
        items = list(x.items())
        tensors = [t for _, t in items]
        names = [str(k) for k, _ in items]
    elif isinstance(x, (list, tuple)):
        tensors = list(x)
        names = [t._keras_history[0].name if isinstance(t, KerasTensor) else "" for t in tensors]
    else:
        raise TypeError(
            f"Model: {what} must be symbolic tensors (from Input and layer calls), got {type(x).__name__}"
        )
    if not tensors or not all(isinstance(t, KerasTensor) for t in tensors):
        raise TypeError(
            f"Model: {what} must be symbolic tensors (from keras.Input and layer calls); real tensors or "
            "arrays "
            "go to model(x) or model.predict(x)"
        )
    return tensors, names


def _topological_nodes(outputs: list[KerasTensor], inputs: list[KerasTensor]) -> list[Node]:
    """The nodes between `inputs` and `outputs`, each after the nodes it needs."""
    input_ids = {id(t) for t in inputs}
    order: list[Node] = []
    done: set[int] = set()
    visiting: set[int] = set()

    def node_of(t: KerasTensor) -> Node:
        layer, idx, _ = t._keras_history
        return layer._inbound_nodes[idx]

    def visit(t: KerasTensor) -> None:
        if id(t) in input_ids:
            return
        node = node_of(t)
        if id(node) in done:
            return
        if isinstance(node.layer, InputLayer):
            raise ValueError(
                f"Graph disconnected: cannot obtain value for tensor {t} at layer '{node.layer.name}': it "
                "is an "
                "Input that is not among the model's inputs"
            )
        if id(node) in visiting:
            raise ValueError("Model: the layer graph has a cycle")
        visiting.add(id(node))
        for parent in node.inputs:
            visit(parent)
        visiting.discard(id(node))
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    return order


class _Graph:
    """A functional model's graph: inputs, outputs, nodes in execution order, layers."""

    def __init__(self, inputs, input_names, outputs, output_names, nodes, layers):
        self.inputs: list[KerasTensor] = inputs
        self.input_names: list[str] = input_names
        self.outputs: list[KerasTensor] = outputs
        self.output_names: list[str] = output_names
        self.nodes: list[Node] = nodes
        self.layers: list[Layer] = layers
