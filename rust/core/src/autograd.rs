//! Reverse-mode autograd: the graph nodes, grad mode, and the backward pass.
//!
//! An op records a [`Node`] only when grad mode is on and some input requires a gradient.
//! A node holds the op's derivative rule (a closure over what it saved) and one edge per
//! input. `backward` runs the rules in reverse topological order and accumulates into the
//! leaves' `.grad`. Without `retain_graph` each rule is dropped once run, which frees the
//! saved tensors and makes a second backward through the same graph a clear error.

use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::tensor::{Inner, Tensor};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    /// Callbacks queued during the backward pass running on this thread (see `queue_callback`);
    /// `None` outside a backward pass.
    static CALLBACKS: RefCell<Option<Vec<Callback>>> = const { RefCell::new(None) };
    /// While a rule runs: for each of its node's inputs, the gradient other consumers have
    /// already accumulated for it (see `take_prior`).
    static PRIORS: RefCell<Vec<Option<Tensor>>> = const { RefCell::new(Vec::new()) };
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

/// A hook run with a leaf once its gradient is final in a backward pass (PyTorch's
/// `register_post_accumulate_grad_hook`).
pub type LeafHook = Arc<dyn Fn(&Tensor) -> Result<()> + Send + Sync>;

struct HookEntry {
    leaf: Weak<Inner>,
    hooks: Vec<(u64, LeafHook)>,
}

/// The hooks of the leaves that have some, keyed by the leaf's address (checked against a
/// weak handle, so a freed leaf's address reused by a new tensor finds nothing). A global
/// table rather than a field of every tensor: most tensors never have a hook, and the
/// backward pass looks here only while some leaf has one.
static LEAF_HOOKS: Mutex<Option<HashMap<usize, HookEntry>>> = Mutex::new(None);
static HOOKED: AtomicUsize = AtomicUsize::new(0);
static HOOK_IDS: AtomicU64 = AtomicU64::new(1);

fn hooks_table() -> std::sync::MutexGuard<'static, Option<HashMap<usize, HookEntry>>> {
    LEAF_HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers `hook` to run with `leaf` after its gradient is accumulated for the last time
/// in each backward pass that reaches it; returns an id for `remove_post_accumulate_grad_hook`.
pub fn register_post_accumulate_grad_hook(leaf: &Tensor, hook: LeafHook) -> Result<u64> {
    if !leaf.is_leaf() || !leaf.requires_grad() {
        return Err(Error::Autograd(
            "register_post_accumulate_grad_hook: only a leaf tensor that requires grad can have one"
                .into(),
        ));
    }
    let id = HOOK_IDS.fetch_add(1, Ordering::Relaxed);
    let mut table = hooks_table();
    let map = table.get_or_insert_with(HashMap::new);
    map.retain(|_, e| e.leaf.strong_count() > 0);
    let key = leaf.inner_addr();
    let entry = map.entry(key).or_insert_with(|| HookEntry {
        leaf: leaf.downgrade(),
        hooks: Vec::new(),
    });
    if entry.leaf.strong_count() == 0 || entry.leaf.as_ptr() as usize != key {
        *entry = HookEntry {
            leaf: leaf.downgrade(),
            hooks: Vec::new(),
        };
    }
    entry.hooks.push((id, hook));
    HOOKED.store(map.values().map(|e| e.hooks.len()).sum(), Ordering::Release);
    Ok(id)
}

/// Removes a hook registered by `register_post_accumulate_grad_hook` (an unknown id is
/// ignored).
pub fn remove_post_accumulate_grad_hook(id: u64) {
    let mut table = hooks_table();
    if let Some(map) = table.as_mut() {
        for e in map.values_mut() {
            e.hooks.retain(|(i, _)| *i != id);
        }
        map.retain(|_, e| !e.hooks.is_empty() && e.leaf.strong_count() > 0);
        HOOKED.store(map.values().map(|e| e.hooks.len()).sum(), Ordering::Release);
    }
}

fn leaf_hooks(leaf: &Tensor) -> Vec<LeafHook> {
    let table = hooks_table();
    let key = leaf.inner_addr();
    match table.as_ref().and_then(|m| m.get(&key)) {
        Some(e) if e.leaf.as_ptr() as usize == key && e.leaf.strong_count() > 0 => {
            e.hooks.iter().map(|(_, h)| h.clone()).collect()
        }
        _ => Vec::new(),
    }
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

/// Records a derivative rule written outside the library (a custom autograd function, as
/// PyTorch's `torch.autograd.Function`): `out` (a fresh result, detached from any graph)
/// gets `rule`, which maps the gradient of `out` to one gradient (or None) per input.
/// Returns `out` unchanged when grad mode is off or no input requires grad.
pub fn record_custom(
    out: Tensor,
    name: &'static str,
    inputs: &[&Tensor],
    rule: BackwardFn,
) -> Tensor {
    record(out.detach(), name, inputs, move |g| rule(g))
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

/// Runs the backward pass from `root`, seeding it with `gradient` (1 for a scalar root),
/// then the callbacks queued during it, in order.
pub fn backward(root: &Tensor, gradient: Option<Tensor>, retain_graph: bool) -> Result<()> {
    let outer = CALLBACKS.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = run_backward(root, gradient, retain_graph);
    let queued = CALLBACKS.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    r?;
    for f in queued.unwrap_or_default() {
        f()?;
    }
    Ok(())
}

fn run_backward(root: &Tensor, gradient: Option<Tensor>, retain_graph: bool) -> Result<()> {
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
    let hooked = HOOKED.load(Ordering::Acquire) > 0;
    let root_node = match root.grad_fn() {
        None => {
            accumulate_leaf(root, seed)?;
            if hooked {
                for h in leaf_hooks(root) {
                    h(root)?;
                }
            }
            return Ok(());
        }
        Some(n) => n.clone(),
    };
    // Count how many consumers feed each node, so a node runs once all its gradient is in.
    let mut pending: HashMap<*const Node, usize> = HashMap::new();
    // with hooks anywhere: the edges into each hooked leaf, so its hooks run after the last
    let mut leaf_left: HashMap<usize, (usize, Vec<LeafHook>)> = HashMap::new();
    let mut stack = vec![root_node.clone()];
    pending.insert(Arc::as_ptr(&root_node), 0);
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
                Edge::Leaf(t) if hooked => {
                    let entry = leaf_left
                        .entry(t.inner_addr())
                        .or_insert_with(|| (0, leaf_hooks(t)));
                    entry.0 += 1;
                }
                Edge::Leaf(_) => {}
            }
        }
    }
    leaf_left.retain(|_, (_, hooks)| !hooks.is_empty());
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
            // what other consumers have summed for this node's inputs so far, for the rule
            // to fold into its own gradients (`take_prior`); what it leaves is added below
            let offered: Vec<Option<Tensor>> = n
                .inputs
                .iter()
                .map(|e| match e {
                    Some(Edge::Node(c)) => grads.remove(&Arc::as_ptr(c)),
                    _ => None,
                })
                .collect();
            let outer = PRIORS.with(|p| p.replace(offered));
            let out = rule(&g);
            let left = PRIORS.with(|p| p.replace(outer));
            for (e, prior) in n.inputs.iter().zip(left) {
                if let (Some(Edge::Node(c)), Some(prior)) = (e, prior) {
                    grads.insert(Arc::as_ptr(c), prior);
                }
            }
            let out = out?;
            if !retain_graph {
                *slot = None;
            }
            out
        };
        drop(g);
        for (edge, ig) in n.inputs.iter().zip(input_grads) {
            if let (Some(Edge::Leaf(t)), false) = (edge, leaf_left.is_empty()) {
                let key = t.inner_addr();
                if let Some(ig) = ig {
                    accumulate_leaf(t, ig)?;
                }
                if let Some((left, _)) = leaf_left.get_mut(&key) {
                    *left -= 1;
                    if *left == 0 {
                        let (_, hooks) = leaf_left.remove(&key).expect("present");
                        for h in hooks {
                            h(t)?;
                        }
                    }
                }
                continue;
            }
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
