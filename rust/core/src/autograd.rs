//! Reverse-mode autograd: the graph nodes, grad mode, and the backward pass.
//!
//! An op records a [`Node`] only when grad mode is on and some input requires a gradient.
//! A node holds the op's derivative rule (a closure over what it saved) and one edge per
//! input. `backward` runs the rules in reverse topological order and accumulates into the
//! leaves' `.grad`. Without `retain_graph` each rule is dropped once run, which frees the
//! saved tensors and makes a second backward through the same graph a clear error.

use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::tensor::Tensor;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops record the graph on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns graph recording on or off for this thread; returns the previous setting.
pub fn set_grad_enabled(on: bool) -> bool {
    GRAD_ENABLED.with(|g| g.replace(on))
}

/// Disables grad mode until dropped (restoring the previous mode).
pub struct NoGradGuard {
    prev: bool,
}

impl NoGradGuard {
    /// Turns grad mode off.
    #[allow(clippy::new_without_default)]
    pub fn new() -> NoGradGuard {
        NoGradGuard {
            prev: set_grad_enabled(false),
        }
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.prev);
    }
}

/// A derivative rule: given the gradient of the output, the gradients of each input
/// (`None` where an input needs none).
pub type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// Where an input's gradient goes: another node, or a leaf's `.grad`.
pub(crate) enum Edge {
    Node(Arc<Node>),
    Leaf(Tensor),
}

/// One recorded op in the graph.
pub struct Node {
    name: &'static str,
    rule: Mutex<Option<BackwardFn>>,
    inputs: Vec<Option<Edge>>,
}

impl Node {
    /// The op's name, e.g. `MulBackward`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for Node {
    // Drop long chains iteratively: the default recursive drop would overflow the stack
    // on graphs tens of thousands of ops deep.
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = Vec::new();
        for e in self.inputs.drain(..).flatten() {
            if let Edge::Node(n) = e {
                stack.push(n);
            }
        }
        while let Some(n) = stack.pop() {
            if let Some(mut node) = Arc::into_inner(n) {
                for e in node.inputs.drain(..).flatten() {
                    if let Edge::Node(n) = e {
                        stack.push(n);
                    }
                }
            }
        }
    }
}

/// Records `rule` as the backward of `out` when grad mode is on and an input requires grad.
pub(crate) fn record(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    rule: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return out;
    }
    let edges = inputs
        .iter()
        .map(|t| {
            if let Some(f) = t.grad_fn() {
                Some(Edge::Node(f.clone()))
            } else if t.requires_grad() {
                Some(Edge::Leaf((*t).clone()))
            } else {
                None
            }
        })
        .collect();
    let node = Arc::new(Node {
        name,
        rule: Mutex::new(Some(Box::new(rule))),
        inputs: edges,
    });
    out.with_grad_fn(node)
}

/// Whether input `i` of a rule needs its gradient computed.
pub(crate) fn needs(t: &Tensor) -> bool {
    t.requires_grad()
}

fn accumulate(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) => prev.add(&g)?,
    });
    Ok(())
}

fn accumulate_leaf(leaf: &Tensor, g: Tensor) -> Result<()> {
    if g.shape() != leaf.shape() {
        return Err(Error::Autograd(format!(
            "backward: gradient of shape {} does not match tensor of shape {}",
            fmt_shape(g.shape()),
            fmt_shape(leaf.shape())
        )));
    }
    let g = if g.dtype() != leaf.dtype() {
        g.cast(leaf.dtype())?
    } else {
        g
    };
    let mut slot = leaf.grad_slot();
    let prev = slot.take();
    *slot = Some(match prev {
        // own the storage: .grad may be updated in place, so it must not alias another
        // tensor (the seed, a broadcast view, or a sibling's gradient)
        None => g.into_owned_data()?,
        Some(p) => p.add(&g)?.detach(),
    });
    Ok(())
}

/// Runs the backward pass from `root`, seeding it with `gradient` (1 for a scalar root).
pub fn backward(root: &Tensor, gradient: Option<Tensor>, retain_graph: bool) -> Result<()> {
    if !root.requires_grad() {
        return Err(Error::Autograd(
            "backward: tensor does not require grad and has no grad_fn".to_string(),
        ));
    }
    let seed = match gradient {
        Some(g) => {
            if g.shape() != root.shape() {
                return Err(Error::Shape(format!(
                    "backward: gradient has shape {} but the tensor has shape {}",
                    fmt_shape(g.shape()),
                    fmt_shape(root.shape())
                )));
            }
            g.detach().to_device(root.device())?
        }
        None => {
            if root.numel() != 1 {
                return Err(Error::Autograd(format!(
                    "backward: grad can be implicitly created only for a tensor with one element, \
                     got shape {}; pass gradient=",
                    fmt_shape(root.shape())
                )));
            }
            Tensor::full(root.shape(), 1.0, root.dtype())?.to_device(root.device())?
        }
    };
    let _guard = NoGradGuard::new();
    let root_node = match root.grad_fn() {
        None => return accumulate_leaf(root, seed),
        Some(n) => n.clone(),
    };
    // Count how many consumers feed each node, so a node runs once all its gradient is in.
    let mut pending: HashMap<*const Node, usize> = HashMap::new();
    let mut stack = vec![root_node.clone()];
    pending.insert(Arc::as_ptr(&root_node), 0);
    while let Some(n) = stack.pop() {
        for e in n.inputs.iter().flatten() {
            if let Edge::Node(c) = e {
                let p = Arc::as_ptr(c);
                match pending.get_mut(&p) {
                    Some(cnt) => *cnt += 1,
                    None => {
                        pending.insert(p, 1);
                        stack.push(c.clone());
                    }
                }
            }
        }
    }
    let mut grads: HashMap<*const Node, Tensor> = HashMap::new();
    grads.insert(Arc::as_ptr(&root_node), seed);
    let mut ready = vec![root_node];
    while let Some(n) = ready.pop() {
        let key = Arc::as_ptr(&n);
        let g = match grads.remove(&key) {
            Some(g) => g,
            None => continue,
        };
        let input_grads = {
            let mut slot = n.rule.lock().unwrap_or_else(|e| e.into_inner());
            let rule = match slot.as_ref() {
                Some(r) => r,
                None => {
                    return Err(Error::Autograd(format!(
                        "backward: trying to backward through the graph a second time ({} \
                         already ran and freed its saved tensors); call backward(retain_graph=True) \
                         the first time if you need to",
                        n.name
                    )))
                }
            };
            let out = rule(&g)?;
            if !retain_graph {
                *slot = None;
            }
            out
        };
        drop(g);
        for (edge, ig) in n.inputs.iter().zip(input_grads) {
            match (edge, ig) {
                (Some(Edge::Leaf(t)), Some(ig)) => accumulate_leaf(t, ig)?,
                (Some(Edge::Node(c)), ig) => {
                    let p = Arc::as_ptr(c);
                    if let Some(ig) = ig {
                        let mut slot = grads.remove(&p);
                        accumulate(&mut slot, ig)?;
                        if let Some(s) = slot {
                            grads.insert(p, s);
                        }
                    }
                    let cnt = pending.get_mut(&p).expect("node counted in the first pass");
                    *cnt -= 1;
                    if *cnt == 0 {
                        ready.push(c.clone());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
