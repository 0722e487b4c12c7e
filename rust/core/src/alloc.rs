//! A caching allocator for large host buffers: freed blocks of 1 MiB or more are kept and
//! handed to the next request of the same size class instead of going back to the system.
//!
//! Why: glibc serves blocks above its mmap threshold (at most 32 MiB) with fresh mappings,
//! so each large tensor of each training step (an im2col matrix, an activation) paid a page
//! fault per 4 KiB on first touch; in the MNIST CNN that was a third of the step
//! (benches/README.md). A training loop asks for the same sizes every step, so a small
//! cache of exact size classes serves it with memory that is already mapped: the host
//! counterpart of the GPU's buffer pool. The binary that wants it declares it as its
//! `#[global_allocator]` (the Python module does); small blocks go straight to the system.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Blocks below this many bytes are not cached: glibc's own mmap threshold, under which
/// it serves blocks from its heap (above it, with fresh mappings).
const MIN_CACHED: usize = 128 << 10;
/// How many free blocks the cache holds at most.
const SLOTS: usize = 256;
/// Every cached block is aligned so, and serves any request aligned as much or less; a
/// request needing more bypasses the cache. (Blocks kept at their own alignments let a Vec
/// take the 64-aligned block a gemm buffer had left, and that gemm buffer missed every step.)
/// 128: gemm's packing buffers, asked for on every product, are aligned to 128 bytes; at
/// 64 they bypassed the cache, and glibc returned and re-mapped them (page faults).
const ALIGN: usize = 128;

#[derive(Clone, Copy)]
struct Block {
    ptr: *mut u8,
    class: usize,
    /// when it was freed (a counter): the oldest free block is evicted first
    stamp: u64,
}

// the pointers are owned by the cache while listed, and only handed out under its lock
unsafe impl Send for Block {}

struct Cache {
    free: [Option<Block>; SLOTS],
    bytes: usize,
    clock: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    free: [None; SLOTS],
    bytes: 0,
    clock: 0,
});
/// The most bytes kept in free blocks (see `set_limit`).
static LIMIT: AtomicUsize = AtomicUsize::new(2 << 30);
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// The size class of a request: rounded up to a sixteenth of its power of two, so a
/// cached block wastes at most 1/8 of the request and requests of one size share a class.
fn class_of(size: usize) -> usize {
    let step = size.next_power_of_two() / 16;
    size.div_ceil(step) * step
}

/// Whether a request goes through the cache (large enough, and aligned no more than ALIGN).
#[inline(always)]
fn cached(layout: &Layout) -> bool {
    layout.size() >= MIN_CACHED && layout.align() <= ALIGN
}

/// The layout a cached block of `class` bytes was allocated with.
#[inline(always)]
fn block_layout(class: usize) -> Layout {
    Layout::from_size_align(class, ALIGN).expect("a valid block layout")
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    // a panic while holding the lock leaves the list consistent (entries are plain values)
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The caching allocator (a unit type to name as `#[global_allocator]`).
pub struct CachingAlloc;

impl CachingAlloc {
    /// A cached block of `class` bytes, if one is free.
    fn take(class: usize) -> Option<*mut u8> {
        let mut c = lock();
        let slot = c
            .free
            .iter()
            .position(|b| matches!(b, Some(b) if b.class == class))?;
        let b = c.free[slot].take()?;
        c.bytes -= b.class;
        Some(b.ptr)
    }
}

unsafe impl GlobalAlloc for CachingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !cached(&layout) {
            return System.alloc(layout);
        }
        if layout.size() == PROBE_SIZE {
            let p = System.alloc(layout);
            PROBED.store(p, Ordering::Relaxed);
            return p;
        }
        let class = class_of(layout.size());
        if let Some(p) = Self::take(class) {
            HITS.fetch_add(1, Ordering::Relaxed);
            return p;
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        match Layout::from_size_align(class, ALIGN) {
            Ok(l) => System.alloc(l),
            Err(_) => std::ptr::null_mut(),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !cached(&layout) {
            return System.alloc_zeroed(layout);
        }
        let class = class_of(layout.size());
        if let Some(p) = Self::take(class) {
            HITS.fetch_add(1, Ordering::Relaxed);
            std::ptr::write_bytes(p, 0, layout.size());
            return p;
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        // fresh zeroed pages from the system cost nothing until touched
        match Layout::from_size_align(class, ALIGN) {
            Ok(l) => System.alloc_zeroed(l),
            Err(_) => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if maybe_lent(ptr) && give_back(ptr) {
            return;
        }
        if layout.size() == PROBE_SIZE {
            return System.dealloc(ptr, layout);
        }
        if !cached(&layout) {
            return System.dealloc(ptr, layout);
        }
        let class = class_of(layout.size());
        let limit = LIMIT.load(Ordering::Relaxed);
        if class > limit {
            return System.dealloc(ptr, block_layout(class));
        }
        // the block is kept; the oldest free blocks make room for it (a few at most, freed
        // to the system once the lock is released)
        let mut evicted: [Option<Block>; 4] = [None; 4];
        let mut kept = false;
        {
            let mut c = lock();
            c.clock += 1;
            let stamp = c.clock;
            for k in 0..=evicted.len() {
                let free_slot = c.free.iter().position(|b| b.is_none());
                if let (Some(i), true) = (free_slot, c.bytes + class <= limit) {
                    c.free[i] = Some(Block { ptr, class, stamp });
                    c.bytes += class;
                    kept = true;
                    break;
                }
                if k == evicted.len() {
                    break;
                }
                let oldest = c
                    .free
                    .iter()
                    .enumerate()
                    .filter_map(|(i, b)| b.map(|b| (b.stamp, i)))
                    .min();
                let Some((_, i)) = oldest else { break };
                let old = c.free[i].take().expect("listed");
                c.bytes -= old.class;
                evicted[k] = Some(old);
            }
        }
        for b in evicted.iter().flatten() {
            System.dealloc(b.ptr, block_layout(b.class));
        }
        if !kept {
            System.dealloc(ptr, block_layout(class));
        }
    }
}

// ---------------------------------------------------------------- lent memory
//
// Another library's array (a DLPack capsule's) can back a host storage without a copy: the
// storage's `Vec` is built over the foreign pointer, and the address is listed here with
// the closure that hands the memory back to its owner. When the `Vec` drops, `dealloc`
// finds the address and calls that closure instead of freeing memory it does not own. A
// lent `Vec` must never grow (a host storage never does: its memory never moves, which
// `Tensor::host_memory` relies on too); were one to, `realloc` would copy out and hand the
// block back here, which is still correct. The list is a fixed array so that nothing is
// allocated while its lock is held (an allocation there could free, and so re-enter).

/// What hands lent memory back to its owner.
pub type Release = Box<dyn FnOnce() + Send>;

/// How many foreign arrays may be lent at once; past it, callers copy instead.
const LENT_SLOTS: usize = 4096;

static LENT: Mutex<[Option<Loan>; LENT_SLOTS]> = Mutex::new([const { None }; LENT_SLOTS]);
/// One lent `Vec`: its address, when it was lent (a counter), and its release.
///
/// Several vectors may be lent over one address (an array shared twice, a storage viewed
/// under another dtype, an export shared back), and a free names only the address, so it
/// releases the *newest* loan there. That is safe because the oldest loan at an address
/// always holds the memory's owner (a later loan there can only be made through an earlier
/// one, or through the owner itself), and loans and lent vectors stay equal in number.
struct Loan {
    addr: usize,
    seq: u64,
    release: Release,
}

static LOAN_SEQ: AtomicU64 = AtomicU64::new(0);

/// Entries in `LENT`.
static LENT_COUNT: AtomicUsize = AtomicUsize::new(0);
/// A filter over the lent addresses, read without the lock on every free: a clear bit
/// means "not lent", so an ordinary free costs a load or two, not a lock and a scan.
static LENT_BITS: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];

/// The filter bit of an address (word, mask).
fn lent_bit(addr: usize) -> (usize, u64) {
    let h = (addr >> 4) ^ (addr >> 14) ^ (addr >> 24);
    ((h >> 6) & 15, 1u64 << (h & 63))
}

/// Whether `ptr` may be lent (no false negatives).
#[inline(always)]
fn maybe_lent(ptr: *mut u8) -> bool {
    let (w, m) = lent_bit(ptr as usize);
    LENT_BITS[w].load(Ordering::Acquire) & m != 0
}

/// A request size nothing else asks for, used to learn whether this allocator is the
/// process's global one (see `is_global`).
const PROBE_SIZE: usize = MIN_CACHED + 4099;
static PROBED: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

fn lent() -> std::sync::MutexGuard<'static, [Option<Loan>; LENT_SLOTS]> {
    LENT.lock().unwrap_or_else(|e| e.into_inner())
}

/// If `ptr` is lent memory, takes it off the list and hands it back to its owner.
fn give_back(ptr: *mut u8) -> bool {
    let release = {
        let mut l = lent();
        let newest = l
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.as_ref()
                    .filter(|e| e.addr == ptr as usize)
                    .map(|e| (e.seq, i))
            })
            .max();
        let Some((_, slot)) = newest else {
            return false;
        };
        LENT_COUNT.fetch_sub(1, Ordering::AcqRel);
        let taken = l[slot].take().map(|e| e.release);
        // the filter again from the addresses still lent (its bits may be shared)
        let mut bits = [0u64; 16];
        for e in l.iter().flatten() {
            let (w, m) = lent_bit(e.addr);
            bits[w] |= m;
        }
        for (word, b) in LENT_BITS.iter().zip(bits) {
            word.store(b, Ordering::Release);
        }
        taken
    };
    // outside the lock: handing memory back may run the owner's code, which may free
    if let Some(r) = release {
        // a panic must not unwind out of the allocator
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(r));
    }
    true
}

/// Whether this allocator is the process's `#[global_allocator]` (only then does a `Vec`
/// over lent memory come back through `dealloc`). Learned once, by a request of a size
/// nothing else makes.
pub fn is_global() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let v: Vec<u8> = Vec::with_capacity(PROBE_SIZE);
        let v = std::hint::black_box(v);
        let seen = std::ptr::eq(PROBED.load(Ordering::Relaxed), v.as_ptr());
        drop(v);
        seen
    })
}

/// A vector of `len` elements over memory another library owns, or `None` (the caller
/// copies) when this allocator is not the global one, too many arrays are lent, or the
/// memory cannot be a `Vec<T>` (null, misaligned, or empty). When the vector drops,
/// `release` runs instead of a free; if `None` is returned, `release` was dropped unrun.
///
/// # Safety
/// `ptr` must point at `len` initialized, valid values of `T` that stay valid, and are not
/// freed, until `release` runs; no other `Vec` may be built over them.
pub unsafe fn lend<T>(ptr: *mut T, len: usize, release: Release) -> Option<Vec<T>> {
    let bytes = len.checked_mul(std::mem::size_of::<T>())?;
    if ptr.is_null() || bytes == 0 || !ptr.is_aligned() || !is_global() {
        return None;
    }
    let mut l = lent();
    let Some(slot) = l.iter().position(|e| e.is_none()) else {
        drop(l);
        // (dropped after the lock: dropping it may free, and a free may look here)
        drop(release);
        return None;
    };
    l[slot] = Some(Loan {
        addr: ptr as usize,
        seq: LOAN_SEQ.fetch_add(1, Ordering::Relaxed),
        release,
    });
    LENT_COUNT.fetch_add(1, Ordering::AcqRel);
    let (w, m) = lent_bit(ptr as usize);
    LENT_BITS[w].fetch_or(m, Ordering::AcqRel);
    drop(l);
    // SAFETY: as the caller promises; the allocation this `Vec` believes it owns is freed
    // through `dealloc`, which finds the address listed above and releases it instead
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// How many foreign arrays are lent now.
pub fn lent_count() -> usize {
    LENT_COUNT.load(Ordering::Relaxed)
}

/// Counters of the cache: blocks served from it, blocks the system had to map, and the
/// bytes held in free blocks now.
pub fn stats() -> (u64, u64, usize) {
    (
        HITS.load(Ordering::Relaxed),
        MISSES.load(Ordering::Relaxed),
        lock().bytes,
    )
}

/// Returns every free block to the system (as `torch.cuda.empty_cache` does for its pool).
pub fn empty() {
    let blocks: Vec<Block> = {
        let mut c = lock();
        c.bytes = 0;
        c.free.iter_mut().filter_map(|b| b.take()).collect()
    };
    for b in blocks {
        // SAFETY: each listed block came from System with exactly this class and alignment
        unsafe { System.dealloc(b.ptr, block_layout(b.class)) };
    }
}

/// Sets the most bytes kept in free blocks (0 turns caching off), returning the previous
/// limit; blocks over a lowered limit are freed.
pub fn set_limit(bytes: usize) -> usize {
    let old = LIMIT.swap(bytes, Ordering::Relaxed);
    if lock().bytes > bytes {
        empty();
    }
    old
}

/// The current limit (see `set_limit`).
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_waste_at_most_an_eighth_and_repeat() {
        for size in [
            MIN_CACHED,
            MIN_CACHED + 1,
            3 << 20,
            42_467_328,
            (1 << 30) - 7,
        ] {
            let c = class_of(size);
            assert!(c >= size && c - size <= size / 8 + 1, "{size} -> {c}");
            assert_eq!(class_of(c), c);
        }
    }

    #[test]
    fn memory_is_lent_only_when_this_allocator_frees_the_vec() {
        // the test binary's global allocator is the system's: a `Vec` over lent memory
        // would be freed by it, so nothing is lent and the release is dropped unrun
        assert!(!is_global());
        let mut values = [1.0f32, 2.0];
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let release: Release = Box::new(move || flag.store(true, Ordering::SeqCst));
        assert!(unsafe { lend(values.as_mut_ptr(), 2, release) }.is_none());
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(lent_count(), 0);
        // the filter has no false negatives
        for addr in [0x1000usize, 0x7fff_1234_5670, 0x10] {
            let (w, m) = lent_bit(addr);
            assert!(w < 16 && m.count_ones() == 1);
        }
    }

    #[test]
    fn a_freed_block_serves_the_next_request_of_its_class() {
        let a = CachingAlloc;
        let l = Layout::from_size_align(5 << 20, 64).unwrap();
        unsafe {
            let p = a.alloc(l);
            assert!(!p.is_null());
            p.write_bytes(7, l.size());
            a.dealloc(p, l);
            let (hits, _, _) = stats();
            let q = a.alloc_zeroed(l);
            assert_eq!(q, p, "the cached block is reused");
            assert!(stats().0 > hits);
            assert!(
                (0..l.size()).step_by(4099).all(|i| *q.add(i) == 0),
                "zeroed on reuse"
            );
            a.dealloc(q, l);
            let small = Layout::from_size_align(100, 8).unwrap();
            let s = a.alloc(small);
            a.dealloc(s, small);
        }
        empty();
        assert_eq!(stats().2, 0);
    }
}
