//! Hooks on gradients: on a tensor's gradient before it is used (`register_hook`, PyTorch's
//! `Tensor.register_hook`), on a leaf after its gradient is accumulated
//! (`register_post_accumulate_grad_hook`), and the non-leaf gradients kept by `retain_grad`.
//!
//! A leaf's hooks live in a global table keyed by the leaf's address (checked against a
//! weak handle, so a freed leaf's address reused by a new tensor finds nothing): most
//! tensors never have a hook, and the backward pass looks there only while some leaf has
//! one. A non-leaf's hooks live on its graph node, which receives exactly that tensor's
//! gradient.

use super::Node;
use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::tensor::{Inner, Tensor};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// A hook run with a leaf once its gradient is final in a backward pass (PyTorch's
/// `register_post_accumulate_grad_hook`).
pub type LeafHook = Arc<dyn Fn(&Tensor) -> Result<()> + Send + Sync>;

/// A hook on a tensor's gradient (PyTorch's `Tensor.register_hook`): called with the
/// gradient summed over all its uses in a backward pass, it may return a replacement of
/// the same shape, which is what flows on (and into `.grad` for a leaf).
pub type GradHook = Arc<dyn Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync>;

#[derive(Default)]
pub(crate) struct NodeHooks {
    pre: Vec<(u64, GradHook)>,
    /// the non-leaf whose gradient this node receives, when it called `retain_grad`
    retain: Option<Weak<Inner>>,
}

struct LeafEntry {
    leaf: Weak<Inner>,
    pre: Vec<(u64, GradHook)>,
    post: Vec<(u64, LeafHook)>,
}

impl LeafEntry {
    fn count(&self) -> usize {
        self.pre.len() + self.post.len()
    }
}

static LEAF_HOOKS: Mutex<Option<HashMap<usize, LeafEntry>>> = Mutex::new(None);
/// How many leaf hooks are registered: the backward pass skips the table while none are.
pub(super) static HOOKED: AtomicUsize = AtomicUsize::new(0);
/// Set once any node has had a hook or a retained gradient: until then the backward pass
/// does not look at nodes' hooks.
pub(super) static NODE_HOOKED: AtomicBool = AtomicBool::new(false);
static HOOK_IDS: AtomicU64 = AtomicU64::new(1);
/// The node each non-leaf hook id sits on, for `remove_hook`.
static NODE_HOOK_IDS: Mutex<Option<HashMap<u64, Weak<Node>>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn recount(map: &HashMap<usize, LeafEntry>) {
    HOOKED.store(map.values().map(LeafEntry::count).sum(), Ordering::Release);
}

fn with_leaf_entry(leaf: &Tensor, f: impl FnOnce(&mut LeafEntry)) {
    let mut table = lock(&LEAF_HOOKS);
    let map = table.get_or_insert_with(HashMap::new);
    map.retain(|_, e| e.leaf.strong_count() > 0);
    let key = leaf.inner_addr();
    let fresh = || LeafEntry {
        leaf: leaf.downgrade(),
        pre: Vec::new(),
        post: Vec::new(),
    };
    let entry = map.entry(key).or_insert_with(fresh);
    if entry.leaf.strong_count() == 0 || entry.leaf.as_ptr() as usize != key {
        *entry = fresh();
    }
    f(entry);
    recount(map);
}

/// Registers `hook` to run with `leaf` after its gradient is accumulated for the last time
/// in each backward pass that reaches it; returns an id for `remove_hook`.
pub fn register_post_accumulate_grad_hook(leaf: &Tensor, hook: LeafHook) -> Result<u64> {
    if !leaf.is_leaf() || !leaf.requires_grad() {
        return Err(Error::Autograd(
            "register_post_accumulate_grad_hook: only a leaf tensor that requires grad can have one"
                .into(),
        ));
    }
    let id = HOOK_IDS.fetch_add(1, Ordering::Relaxed);
    with_leaf_entry(leaf, |e| e.post.push((id, hook)));
    Ok(id)
}

/// Registers `hook` on the gradient of `t` (PyTorch's `Tensor.register_hook`): each
/// backward pass that computes that gradient calls it with the gradient summed over all
/// uses of `t`, and a tensor it returns replaces the gradient. Hooks run in the order they
/// were registered; returns an id for `remove_hook`.
pub fn register_hook(t: &Tensor, hook: GradHook) -> Result<u64> {
    if !t.requires_grad() {
        return Err(Error::Autograd(
            "register_hook: cannot register a hook on a tensor that doesn't require gradient"
                .into(),
        ));
    }
    let id = HOOK_IDS.fetch_add(1, Ordering::Relaxed);
    match t.grad_fn() {
        None => with_leaf_entry(t, |e| e.pre.push((id, hook))),
        Some(node) => {
            lock(&node.hooks).pre.push((id, hook));
            NODE_HOOKED.store(true, Ordering::Release);
            let mut ids = lock(&NODE_HOOK_IDS);
            let map = ids.get_or_insert_with(HashMap::new);
            map.retain(|_, n| n.strong_count() > 0);
            map.insert(id, Arc::downgrade(&node));
        }
    }
    Ok(id)
}

/// Makes the backward pass keep the gradient of the non-leaf `t` in its `.grad`
/// (accumulating over passes, after `t`'s hooks), as PyTorch's `retain_grad`. A leaf keeps
/// its gradient anyway: a no-op there.
pub fn retain_grad(t: &Tensor) -> Result<()> {
    if !t.requires_grad() {
        return Err(Error::Autograd(
            "retain_grad: can't retain_grad on a tensor that has requires_grad=False".into(),
        ));
    }
    if let Some(node) = t.grad_fn() {
        lock(&node.hooks).retain = Some(t.downgrade());
        NODE_HOOKED.store(true, Ordering::Release);
    }
    Ok(())
}

/// Whether `.grad` of `t` is filled by backward passes: a leaf that requires grad, or a
/// non-leaf after `retain_grad`.
pub fn retains_grad(t: &Tensor) -> bool {
    match t.grad_fn() {
        None => false,
        Some(node) => lock(&node.hooks)
            .retain
            .as_ref()
            .is_some_and(|w| w.as_ptr() as usize == t.inner_addr()),
    }
}

/// After an in-place op rewrote `t`'s history away from `old`: a `retain_grad` of `t`
/// moves to its new node (its `.grad` is the gradient of the values it now holds, as
/// PyTorch moves it).
pub(crate) fn move_retain(old: &Arc<Node>, t: &Tensor) -> Result<()> {
    let held = {
        let mut h = lock(&old.hooks);
        let mine = h
            .retain
            .as_ref()
            .is_some_and(|w| w.as_ptr() as usize == t.inner_addr());
        if mine {
            h.retain = None;
        }
        mine
    };
    if held {
        retain_grad(t)?;
    }
    Ok(())
}

/// Removes a hook registered by `register_hook` or `register_post_accumulate_grad_hook`
/// (an unknown or already removed id is ignored).
pub fn remove_hook(id: u64) {
    {
        let mut table = lock(&LEAF_HOOKS);
        if let Some(map) = table.as_mut() {
            for e in map.values_mut() {
                e.pre.retain(|(i, _)| *i != id);
                e.post.retain(|(i, _)| *i != id);
            }
            map.retain(|_, e| e.count() > 0 && e.leaf.strong_count() > 0);
            recount(map);
        }
    }
    let node = lock(&NODE_HOOK_IDS).as_mut().and_then(|m| m.remove(&id));
    if let Some(node) = node.and_then(|w| w.upgrade()) {
        lock(&node.hooks).pre.retain(|(i, _)| *i != id);
    }
}

/// The hooks of a leaf: (gradient hooks, post-accumulate hooks).
pub(super) fn leaf_hooks(leaf: &Tensor) -> (Vec<GradHook>, Vec<LeafHook>) {
    let table = lock(&LEAF_HOOKS);
    let key = leaf.inner_addr();
    match table.as_ref().and_then(|m| m.get(&key)) {
        Some(e) if e.leaf.as_ptr() as usize == key && e.leaf.strong_count() > 0 => (
            e.pre.iter().map(|(_, h)| h.clone()).collect(),
            e.post.iter().map(|(_, h)| h.clone()).collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    }
}

/// A node's gradient hooks and the tensor that retains its gradient (copied out, so a hook
/// may register another without deadlock).
pub(super) fn node_hooks(node: &Node) -> (Vec<GradHook>, Option<Tensor>) {
    let h = lock(&node.hooks);
    (
        h.pre.iter().map(|(_, f)| f.clone()).collect(),
        h.retain.as_ref().and_then(Tensor::upgrade),
    )
}

/// Runs gradient hooks over `g` in order, each seeing the previous one's result.
pub(super) fn apply(hooks: &[GradHook], mut g: Tensor) -> Result<Tensor> {
    for h in hooks {
        if let Some(r) = h(&g)? {
            if r.shape() != g.shape() {
                return Err(Error::Shape(format!(
                    "register_hook: a hook changed the gradient's shape from {} to {}",
                    fmt_shape(g.shape()),
                    fmt_shape(r.shape())
                )));
            }
            g = if r.dtype() != g.dtype() {
                r.cast(g.dtype())?
            } else {
                r
            }
            .detach();
        }
    }
    Ok(g)
}
