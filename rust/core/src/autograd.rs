//! Reverse-mode autograd: the graph nodes, grad mode, and the backward pass.
//!
//! An op records a [`Node`] only when grad mode is on and some input requires a gradient.
//! A node holds the op's derivative rule (a closure over what it saved) and one edge per
//! input. `backward` runs the rules in reverse topological order and accumulates into the
//! leaves' `.grad`. Without `retain_graph` each rule is dropped once run, which frees the
//! saved tensors and makes a second backward through the same graph a clear error.
//! With `create_graph` the rules run with grad mode on and record the gradients' own
//! graph (higher-order derivatives); a custom rule marked once-differentiable refuses.

use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::storage::Storage;
use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

mod hooks;
pub(crate) use hooks::move_retain;
pub use hooks::{
    register_hook, register_post_accumulate_grad_hook, remove_hook, retain_grad, retains_grad,
    GradHook, LeafHook,
};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    /// Callbacks queued during the backward pass running on this thread (see `queue_callback`);
    /// `None` outside a backward pass.
    static CALLBACKS: RefCell<Option<Vec<Callback>>> = const { RefCell::new(None) };
    /// While a rule runs: for each of its node's inputs, the gradient other consumers have
    /// already accumulated for it (see `take_prior`).
    static PRIORS: RefCell<Vec<Option<Tensor>>> = const { RefCell::new(Vec::new()) };
    /// Whether a `create_graph` backward pass is running on this thread.
    static CREATING: Cell<bool> = const { Cell::new(false) };
}

/// For a backward rule: the gradient other consumers have already accumulated for its
/// input `i` (an interior node, not a leaf), taken, so the rule returns its own gradient
/// for that input with it added (`prior + own`, the sum the engine would make) and the
/// add costs no pass of its own: a residual block's input gets the shortcut's gradient
/// inside the product that makes the body's. A rule that takes it must return Some for
/// input `i`. None when there is none.
pub(crate) fn take_prior(i: usize) -> Option<Tensor> {
    PRIORS.with(|p| p.borrow_mut().get_mut(i).and_then(Option::take))
}

/// A function run once the current backward pass has finished (see `queue_callback`).
pub type Callback = Box<dyn FnOnce() -> Result<()>>;

/// Queues `f` to run when the backward pass running on this thread finishes, after every
/// gradient is accumulated (PyTorch's `queue_callback` on its execution engine): a
/// data-parallel wrapper waits there for its gradient reductions. An error outside a
/// backward pass.
pub fn queue_callback(f: Callback) -> Result<()> {
    CALLBACKS.with(|c| match c.borrow_mut().as_mut() {
        Some(q) => {
            q.push(f);
            Ok(())
        }
        None => Err(Error::Autograd(
            "queue_callback: can only be called during a backward pass (from a hook)".into(),
        )),
    })
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
    hooks: Mutex<hooks::NodeHooks>,
    /// the storages whose values the rule reads, at the version it saw them (checked
    /// before it runs: an in-place write since would make its gradient wrong)
    /// (weak: the rule's own handles keep them alive, and are freed when it has run)
    saved: SmallVec<[(std::sync::Weak<Storage>, u64); 2]>,
    /// the rule is written in recorded tensor ops over what `Tensor::saved_input` kept, so
    /// run with grad mode on it records its own graph (a `create_graph` pass may run it)
    higher: bool,
}

/// The tensors a rule reads (see `record_higher`); up to three without a heap allocation.
pub(crate) type Saved = SmallVec<[Tensor; 3]>;

impl Node {
    /// The op's name, e.g. `MulBackward`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Node {
    /// Moves this node's input edges onto `stack`, then drops its rule: the rule's kept
    /// inputs hold the same upstream nodes as the edges (`Tensor::saved_input`), so with
    /// the edges on the stack dropping the rule never frees a node itself.
    fn release_into(&mut self, stack: &mut Vec<Arc<Node>>) {
        for e in self.inputs.drain(..).flatten() {
            if let Edge::Node(n) = e {
                stack.push(n);
            }
        }
        drop(
            self.rule
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }
}

impl Drop for Node {
    // Drop long chains iteratively: the default recursive drop would overflow the stack
    // on graphs tens of thousands of ops deep (through the edges, and through the upstream
    // nodes the rules' kept inputs hold).
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = Vec::new();
        self.release_into(&mut stack);
        while let Some(n) = stack.pop() {
            if let Some(mut node) = Arc::into_inner(n) {
                node.release_into(&mut stack);
            }
        }
    }
}

/// Records `rule` as the backward of `out` when grad mode is on and an input requires grad.
/// `saved` names the tensors whose values the rule reads (inputs, or the output itself):
/// if any of them is modified in place before the rule runs, backward refuses instead of
/// computing a wrong gradient (PyTorch's saved-tensor version check).
///
/// The rule must be differentiable when run with grad mode on (a `create_graph` pass):
/// tensor ops over inputs kept with `Tensor::saved_input` (never the op's own output, which
/// would be a cycle: such a rule recomputes it when `creating_graph()`), with any raw
/// kernel it uses for speed replaced there by recorded ops (or wrapped by `linear_in`).
pub(crate) fn record_higher(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    saved: Saved,
    rule: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    record_with(out, name, inputs, saved, true, rule)
}

/// `record_higher` for a rule whose recorded form differentiates through the op's own
/// output (an activation's derivative from its output): in a `create_graph` pass the rule
/// gets that output with its history, a handle on this very node, which the node keeps
/// weakly (holding its own output strongly would be a cycle; the pass holds the node while
/// its rule runs). Outside such a pass, or without `keep` (the node then does not hold
/// the output's values), the rule gets None.
pub(crate) fn record_higher_out(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    saved: Saved,
    keep: bool,
    rule: impl Fn(&Tensor, Option<&Tensor>) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return out;
    }
    let me: Arc<std::sync::OnceLock<std::sync::Weak<Node>>> = Arc::default();
    let (values, mine) = (keep.then(|| out.detach()), me.clone());
    let node = make_higher_node(
        name,
        inputs,
        &saved,
        Box::new(move |g: &Tensor| {
            let y = match (creating_graph(), &values) {
                (true, Some(v)) => mine
                    .get()
                    .and_then(std::sync::Weak::upgrade)
                    .map(|n| v.on_node(n)),
                _ => None,
            };
            rule(g, y.as_ref())
        }),
    );
    let _ = me.set(Arc::downgrade(&node));
    out.with_grad_fn(node)
}

/// `record_higher`, or with `higher` false a rule a `create_graph` pass refuses at.
fn record_with(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    saved: Saved,
    higher: bool,
    rule: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return out;
    }
    let node = match higher {
        true => make_higher_node(name, inputs, &saved, Box::new(rule)),
        false => make_node(name, inputs, &saved, Box::new(rule)),
    };
    out.with_grad_fn(node)
}

/// For a rule whose result `out` is a linear map of the gradient `g` computed by a raw
/// kernel: in a `create_graph` pass, `out` gets a node whose rule is the map's adjoint
/// (itself recorded ops), so the rule stays differentiable; otherwise `out` as it is.
pub(crate) fn linear_in(
    out: Tensor,
    g: &Tensor,
    name: &'static str,
    adjoint: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Tensor {
    if !creating_graph() {
        return out;
    }
    record_higher(out, name, &[g], Saved::new(), move |gg| {
        Ok(vec![Some(adjoint(gg)?)])
    })
}

/// Whether the backward pass running on this thread records a graph of its own
/// (`create_graph`): a rule then computes with grad mode on, and a rule that keeps values
/// for a faster path must take the recorded ops instead.
pub(crate) fn creating_graph() -> bool {
    CREATING.with(|c| c.get())
}

/// Whether a rule in the history of `t` recorded after `stop` (the history it grew from)
/// reads the values of storage `st`: an in-place write of `t` into `st` would then break
/// that rule (see `Tensor::update_with`).
pub(crate) fn history_reads(t: &Tensor, st: &Arc<Storage>, stop: Option<&Arc<Node>>) -> bool {
    let mut seen: Vec<*const Node> = Vec::new();
    let mut stack: Vec<Arc<Node>> = t.grad_fn().into_iter().collect();
    while let Some(n) = stack.pop() {
        if stop.is_some_and(|s| Arc::ptr_eq(s, &n)) || seen.contains(&Arc::as_ptr(&n)) {
            continue;
        }
        seen.push(Arc::as_ptr(&n));
        if n.saved
            .iter()
            .any(|(s, _)| std::ptr::eq(s.as_ptr(), Arc::as_ptr(st)))
        {
            return true;
        }
        // an in-place op's own subgraph is a few nodes; do not walk the whole history
        if seen.len() > 64 {
            return true;
        }
        for e in n.inputs.iter().flatten() {
            if let Edge::Node(c) = e {
                stack.push(c.clone());
            }
        }
    }
    false
}

/// A graph node for `rule` over `inputs` (the caller decided one is needed).
pub(crate) fn make_node(
    name: &'static str,
    inputs: &[&Tensor],
    saved: &[Tensor],
    rule: BackwardFn,
) -> Arc<Node> {
    let edges = inputs
        .iter()
        .map(|t| {
            if let Some(f) = t.grad_fn() {
                Some(Edge::Node(f))
            } else if t.requires_grad() {
                Some(Edge::Leaf((*t).clone()))
            } else {
                None
            }
        })
        .collect();
    let saved = saved
        .iter()
        .map(|t| (Arc::downgrade(t.storage_arc()), t.version()))
        .collect();
    Arc::new(Node {
        name,
        rule: Mutex::new(Some(rule)),
        inputs: edges,
        hooks: Mutex::default(),
        saved,
        higher: false,
    })
}

/// `make_node` for a rule written in recorded tensor ops (see `record_higher`).
pub(crate) fn make_higher_node(
    name: &'static str,
    inputs: &[&Tensor],
    saved: &[Tensor],
    rule: BackwardFn,
) -> Arc<Node> {
    let mut node = make_node(name, inputs, saved, rule);
    Arc::get_mut(&mut node).expect("a new node").higher = true;
    node
}

/// Records a derivative rule written outside the library (a custom autograd function, as
/// PyTorch's `torch.autograd.Function`): `out` (a fresh result, detached from any graph)
/// gets `rule`, which maps the gradient of `out` to one gradient (or None) per input.
/// Returns `out` unchanged when grad mode is off or no input requires grad.
/// `differentiable`: a `create_graph` pass runs the rule with grad mode on, so one written
/// in tensor ops over tensors it kept with their history is differentiated (as PyTorch's
/// custom Functions); false (PyTorch's `once_differentiable`) makes such a pass refuse.
pub fn record_custom(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    rule: BackwardFn,
    differentiable: bool,
) -> Tensor {
    record_with(
        out.detach(),
        name,
        inputs,
        Saved::new(),
        differentiable,
        move |g| rule(g),
    )
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
    *slot = Some(match (prev, creating_graph()) {
        // own the storage: .grad may be updated in place, so it must not alias another
        // tensor (the seed, a broadcast view, or a sibling's gradient)
        (None, false) => g.into_owned_data()?,
        (Some(p), false) => p.add(&g)?.detach(),
        // create_graph: .grad keeps its history (a copy of its own, as PyTorch's)
        (None, true) => g.clone_tensor()?,
        (Some(p), true) => p.add(&g)?,
    });
    Ok(())
}

/// Runs the backward pass from `root`, seeding it with `gradient` (1 for a scalar root),
/// then the callbacks queued during it, in order.
pub fn backward(root: &Tensor, gradient: Option<Tensor>, retain_graph: bool) -> Result<()> {
    backward_many(
        std::slice::from_ref(root),
        vec![gradient],
        retain_graph,
        None,
        false,
    )
}

/// One backward pass from several roots at once (PyTorch's `torch.autograd.backward` on a
/// list): the gradients they send into shared parts of the graph are summed before those
/// parts run, so the graph is walked once and a second root does not find it freed. With
/// `inputs`, only those tensors' `.grad` is accumulated (leaves or not), as PyTorch's
/// `backward(inputs=...)`. With `create_graph` the pass records the graph of the
/// gradients it computes (PyTorch's `create_graph=True`: `.grad` keeps a history, for
/// higher-order derivatives); a node whose rule cannot be differentiated refuses.
pub fn backward_many(
    roots: &[Tensor],
    gradients: Vec<Option<Tensor>>,
    retain_graph: bool,
    inputs: Option<&[Tensor]>,
    create_graph: bool,
) -> Result<()> {
    if let Some(inputs) = inputs {
        if inputs.is_empty() {
            return Err(Error::Autograd(
                "backward: inputs= was given but is empty".into(),
            ));
        }
        let got = grad(roots, gradients, inputs, retain_graph, true, create_graph)?;
        let _mode = PassMode::new(create_graph);
        for (t, g) in inputs.iter().zip(got) {
            if let Some(g) = g {
                accumulate_leaf(t, g)?;
            }
        }
        return Ok(());
    }
    let outer = CALLBACKS.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = seeds("backward", roots, gradients, create_graph)
        .and_then(|s| run_pass(s, retain_graph, None, create_graph));
    let queued = CALLBACKS.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    r?;
    for f in queued.unwrap_or_default() {
        f()?;
    }
    Ok(())
}

/// The gradients of `outputs` (seeded by `grad_outputs`, 1 for scalar outputs) with
/// respect to `inputs`, returned rather than accumulated into any `.grad` (PyTorch's
/// `torch.autograd.grad`). Hooks registered on the inputs and on the graph's tensors run;
/// `retain_grad` tensors accumulate as in `backward`. An input the outputs do not depend
/// on gets None when `allow_unused`, else an error. Only the part of the graph that leads
/// to `inputs` runs. With `create_graph` the gradients returned carry their own graph.
pub fn grad(
    outputs: &[Tensor],
    grad_outputs: Vec<Option<Tensor>>,
    inputs: &[Tensor],
    retain_graph: bool,
    allow_unused: bool,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    for (i, t) in inputs.iter().enumerate() {
        if !t.requires_grad() {
            return Err(Error::Autograd(format!(
                "grad: the differentiated tensor at index {i} does not require grad"
            )));
        }
    }
    let mut cap = Capture::default();
    for t in inputs {
        match t.grad_fn() {
            Some(n) => cap.nodes.insert(Arc::as_ptr(&n), None),
            None => cap.leaves.insert(t.inner_addr(), None),
        };
    }
    let outer = CALLBACKS.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = seeds("grad", outputs, grad_outputs, create_graph)
        .and_then(|s| run_pass(s, retain_graph, Some(&mut cap), create_graph));
    let queued = CALLBACKS.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    r?;
    for f in queued.unwrap_or_default() {
        f()?;
    }
    let _mode = PassMode::new(create_graph);
    let mut out = Vec::with_capacity(inputs.len());
    for (i, t) in inputs.iter().enumerate() {
        let g = match t.grad_fn() {
            Some(n) => cap.nodes.get(&Arc::as_ptr(&n)).cloned().flatten(),
            // a leaf's gradient hooks run on its total, as in backward
            None => match cap.leaves.get(&t.inner_addr()).cloned().flatten() {
                Some(g) => Some(hooks::apply(&hooks::leaf_hooks(t).0, g)?),
                None => None,
            },
        };
        let g = match g {
            Some(g) if g.dtype() != t.dtype() => Some(g.cast(t.dtype())?),
            g => g,
        };
        if g.is_none() && !allow_unused {
            return Err(Error::Autograd(format!(
                "grad: the differentiated tensor at index {i} appears to not have been used in \
                 the graph; pass allow_unused=True if this is the desired behavior"
            )));
        }
        out.push(g);
    }
    Ok(out)
}

/// Pairs each root with its seed gradient (checked; 1 for a one-element root).
fn seeds(
    op: &str,
    roots: &[Tensor],
    gradients: Vec<Option<Tensor>>,
    create_graph: bool,
) -> Result<Vec<(Tensor, Tensor)>> {
    if gradients.len() != roots.len() {
        return Err(Error::Autograd(format!(
            "{op}: got {} gradients for {} tensors",
            gradients.len(),
            roots.len()
        )));
    }
    let mut out = Vec::with_capacity(roots.len());
    for (root, gradient) in roots.iter().zip(gradients) {
        if !root.requires_grad() {
            return Err(Error::Autograd(format!(
                "{op}: tensor does not require grad and has no grad_fn"
            )));
        }
        let seed = match gradient {
            Some(g) => {
                if g.shape() != root.shape() {
                    return Err(Error::Shape(format!(
                        "{op}: gradient has shape {} but the tensor has shape {}",
                        fmt_shape(g.shape()),
                        fmt_shape(root.shape())
                    )));
                }
                // create_graph: a seed with a history is differentiated through too
                match create_graph {
                    true => g.to_device(root.device())?,
                    false => g.detach().to_device(root.device())?,
                }
            }
            None => {
                if root.numel() != 1 {
                    return Err(Error::Autograd(format!(
                        "{op}: grad can be implicitly created only for a tensor with one \
                         element, got shape {}; pass gradient=",
                        fmt_shape(root.shape())
                    )));
                }
                Tensor::full(root.shape(), 1.0, root.dtype())?.to_device(root.device())?
            }
        };
        out.push((root.clone(), seed));
    }
    Ok(out)
}

/// Where `grad` collects the gradients of its inputs instead of accumulating into leaves.
#[derive(Default)]
struct Capture {
    leaves: HashMap<usize, Option<Tensor>>,
    nodes: HashMap<*const Node, Option<Tensor>>,
}

/// A leaf with hooks, during a pass: how many of its incoming edges are still to deliver,
/// its hooks, and (when it has gradient hooks) the sum so far, which the hooks see whole.
struct LeafState {
    left: usize,
    pre: Vec<GradHook>,
    post: Vec<LeafHook>,
    sum: Option<Tensor>,
}

/// Hands `ig` (None: this edge sends nothing) to the leaf `t`: into `.grad`, into a hooked
/// leaf's running sum (its hooks run after its last edge), or into the capture.
fn deliver(
    t: &Tensor,
    ig: Option<Tensor>,
    leaves: &mut HashMap<usize, LeafState>,
    capture: &mut Option<&mut Capture>,
) -> Result<()> {
    let key = t.inner_addr();
    if let Some(c) = capture {
        if let (Some(slot), Some(ig)) = (c.leaves.get_mut(&key), ig) {
            accumulate(slot, ig)?;
        }
        return Ok(());
    }
    let Some(s) = (!leaves.is_empty()).then(|| leaves.get_mut(&key)).flatten() else {
        return ig.map_or(Ok(()), |ig| accumulate_leaf(t, ig));
    };
    if let Some(ig) = ig {
        match s.pre.is_empty() {
            true => accumulate_leaf(t, ig)?,
            false => accumulate(&mut s.sum, ig)?,
        }
    }
    s.left -= 1;
    if s.left == 0 {
        let s = leaves.remove(&key).expect("present");
        if let Some(g) = s.sum {
            accumulate_leaf(t, hooks::apply(&s.pre, g)?)?;
        }
        for h in s.post {
            h(t)?;
        }
    }
    Ok(())
}

/// Grad mode and the `create_graph` flag for the span of a backward pass: rules run with
/// grad mode off, or on (recording) in a `create_graph` pass.
struct PassMode {
    grad: bool,
    creating: bool,
}

impl PassMode {
    fn new(create_graph: bool) -> PassMode {
        PassMode {
            grad: set_grad_enabled(create_graph),
            creating: CREATING.with(|c| c.replace(create_graph)),
        }
    }
}

impl Drop for PassMode {
    fn drop(&mut self) {
        set_grad_enabled(self.grad);
        CREATING.with(|c| c.set(self.creating));
    }
}

/// The nodes whose rules a `grad` pass must run: those from which one of the captured
/// inputs can be reached (the rest of the graph would compute gradients nobody takes).
fn leading_to(roots: &[Arc<Node>], cap: &Capture) -> std::collections::HashSet<*const Node> {
    // iterative post-order: a node is decided once all its children are
    let mut reaches: HashMap<*const Node, bool> = HashMap::new();
    let mut stack: Vec<(Arc<Node>, bool)> = roots.iter().map(|n| (n.clone(), false)).collect();
    while let Some((n, expanded)) = stack.pop() {
        let p = Arc::as_ptr(&n);
        if reaches.contains_key(&p) && !expanded {
            continue;
        }
        if !expanded {
            stack.push((n.clone(), true));
            reaches.insert(p, false);
            for e in n.inputs.iter().flatten() {
                if let Edge::Node(c) = e {
                    if !reaches.contains_key(&Arc::as_ptr(c)) {
                        stack.push((c.clone(), false));
                    }
                }
            }
            continue;
        }
        let hit = n.inputs.iter().flatten().any(|e| match e {
            Edge::Leaf(t) => cap.leaves.contains_key(&t.inner_addr()),
            Edge::Node(c) => {
                let q = Arc::as_ptr(c);
                cap.nodes.contains_key(&q) || reaches.get(&q).copied().unwrap_or(false)
            }
        });
        reaches.insert(p, hit);
    }
    reaches
        .into_iter()
        .filter_map(|(p, hit)| hit.then_some(p))
        .collect()
}

fn run_pass(
    roots: Vec<(Tensor, Tensor)>,
    retain_graph: bool,
    mut capture: Option<&mut Capture>,
    create_graph: bool,
) -> Result<()> {
    let _mode = PassMode::new(create_graph);
    let hooked = capture.is_none() && hooks::HOOKED.load(Ordering::Acquire) > 0;
    let node_hooked = hooks::NODE_HOOKED.load(Ordering::Acquire);
    // Count how many consumers feed each node, so a node runs once all its gradient is in.
    let mut pending: HashMap<*const Node, usize> = HashMap::new();
    let mut grads: HashMap<*const Node, Tensor> = HashMap::new();
    // with leaf hooks anywhere: the edges into each hooked leaf, so its hooks run after the last
    let mut leaves: HashMap<usize, LeafState> = HashMap::new();
    let count_leaf = |t: &Tensor, leaves: &mut HashMap<usize, LeafState>| {
        leaves
            .entry(t.inner_addr())
            .or_insert_with(|| {
                let (pre, post) = hooks::leaf_hooks(t);
                LeafState {
                    left: 0,
                    pre,
                    post,
                    sum: None,
                }
            })
            .left += 1;
    };
    let mut stack = Vec::new();
    let mut leaf_roots = Vec::new();
    for (t, seed) in roots {
        match t.grad_fn() {
            Some(n) => {
                let p = Arc::as_ptr(&n);
                if let std::collections::hash_map::Entry::Vacant(e) = pending.entry(p) {
                    e.insert(0);
                    stack.push(n.clone());
                }
                let mut slot = grads.remove(&p);
                accumulate(&mut slot, seed)?;
                grads.extend(slot.map(|g| (p, g)));
            }
            None => {
                if hooked {
                    count_leaf(&t, &mut leaves);
                }
                leaf_roots.push((t, seed));
            }
        }
    }
    let root_nodes = stack.clone();
    while let Some(n) = stack.pop() {
        for e in n.inputs.iter().flatten() {
            match e {
                Edge::Node(c) => {
                    let p = Arc::as_ptr(c);
                    match pending.get_mut(&p) {
                        Some(cnt) => *cnt += 1,
                        None => {
                            pending.insert(p, 1);
                            stack.push(c.clone());
                        }
                    }
                }
                Edge::Leaf(t) if hooked => count_leaf(t, &mut leaves),
                Edge::Leaf(_) => {}
            }
        }
    }
    leaves.retain(|_, s| !(s.pre.is_empty() && s.post.is_empty()));
    let wanted = capture.as_deref().map(|c| leading_to(&root_nodes, c));
    for (t, seed) in leaf_roots {
        deliver(&t, Some(seed), &mut leaves, &mut capture)?;
    }
    let mut ready: Vec<Arc<Node>> = root_nodes
        .into_iter()
        .filter(|n| pending[&Arc::as_ptr(n)] == 0)
        .collect();
    while let Some(n) = ready.pop() {
        let key = Arc::as_ptr(&n);
        let input_grads = match grads.remove(&key) {
            // nothing reached this node: its inputs get nothing from it, but still count
            // it as done, so those with other consumers run
            None => vec![None; n.inputs.len()],
            Some(mut g) => {
                if node_hooked {
                    let (pre, retained) = hooks::node_hooks(&n);
                    g = hooks::apply(&pre, g)?;
                    if let Some(t) = retained {
                        accumulate_leaf(&t, g.clone())?;
                    }
                }
                if let Some(slot) = capture.as_mut().and_then(|c| c.nodes.get_mut(&key)) {
                    *slot = Some(g.clone());
                }
                match &wanted {
                    Some(w) if !w.contains(&key) => vec![None; n.inputs.len()],
                    _ => run_rule(&n, &g, retain_graph, &mut grads, create_graph)?,
                }
            }
        };
        for (edge, ig) in n.inputs.iter().zip(input_grads) {
            match (edge, ig) {
                (Some(Edge::Leaf(t)), ig) => deliver(t, ig, &mut leaves, &mut capture)?,
                (Some(Edge::Node(c)), ig) => {
                    let p = Arc::as_ptr(c);
                    if let Some(ig) = ig {
                        let mut slot = grads.remove(&p);
                        accumulate(&mut slot, ig)?;
                        grads.extend(slot.map(|s| (p, s)));
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

/// The error a rule raises when a tensor it reads (`t`, kept at version `at`) was modified
/// in place since (PyTorch's saved-tensor check), for reads the node's `saved` list does
/// not cover (a create_graph pass's recorded rule reading more than the kernel's).
pub(crate) fn check_saved(name: &str, t: &Tensor, at: u64) -> Result<()> {
    match t.version() {
        now if now == at => Ok(()),
        now => Err(modified(name, t.numel(), at, now)),
    }
}

fn modified(name: &str, len: usize, at: u64, now: u64) -> Error {
    Error::Autograd(format!(
        "backward: one of the tensors needed for gradient computation has been modified by \
         an in-place operation: {name} saved a tensor of {len} elements at version {at}, and \
         it is now at version {now}; compute the in-place update out of place (or on a \
         clone()) instead"
    ))
}

/// Runs `n`'s derivative rule on `g`, the gradient of its output; frees it unless
/// `retain_graph`.
fn run_rule(
    n: &Node,
    g: &Tensor,
    retain_graph: bool,
    grads: &mut HashMap<*const Node, Tensor>,
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    if create_graph && !n.higher {
        return Err(Error::Autograd(format!(
            "backward: create_graph=True cannot differentiate through {} a second time: its \
             backward was marked once_differentiable (it does not record the ops it runs)",
            n.name
        )));
    }
    let mut slot = n.rule.lock().unwrap_or_else(|e| e.into_inner());
    let rule = match slot.as_ref() {
        Some(r) => r,
        None => {
            return Err(Error::Autograd(format!(
                "backward: trying to backward through the graph a second time ({} already ran \
                 and freed its saved tensors); call backward(retain_graph=True) the first time \
                 if you need to",
                n.name
            )))
        }
    };
    for (st, v) in &n.saved {
        let Some(st) = st.upgrade() else { continue };
        let now = st.version();
        if now != *v {
            return Err(modified(n.name, st.read().len(), *v, now));
        }
    }
    // what other consumers have summed for this node's inputs so far, for the rule to fold
    // into its own gradients (`take_prior`); what it leaves is added back
    let offered: Vec<Option<Tensor>> = n
        .inputs
        .iter()
        .map(|e| match e {
            Some(Edge::Node(c)) => grads.remove(&Arc::as_ptr(c)),
            _ => None,
        })
        .collect();
    let outer = PRIORS.with(|p| p.replace(offered));
    let out = rule(g);
    let left = PRIORS.with(|p| p.replace(outer));
    for (e, prior) in n.inputs.iter().zip(left) {
        if let (Some(Edge::Node(c)), Some(prior)) = (e, prior) {
            grads.insert(Arc::as_ptr(c), prior);
        }
    }
    let mut out = out?;
    if out.len() < n.inputs.len() {
        out.resize(n.inputs.len(), None);
    }
    if !retain_graph {
        *slot = None;
    }
    Ok(out)
}
