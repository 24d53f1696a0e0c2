//! A counting global allocator, for the heap figures of `bench bus`.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::*};

/// The benchmarks' allocator: mimalloc (the product's, see `agentbus`'s `main.rs`),
/// counting live bytes while [`COUNTING`] is set.
///
/// mimalloc rather than glibc malloc because every event is allocated on the sending
/// thread and freed on a consumer thread, which glibc handles poorly (measured here:
/// +40% calls/s at N=1 for agentbus and for the mpsc baseline alike; both run on it).
pub struct CountingAllocator;

/// Whether allocations are counted now.
pub static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to mimalloc unchanged; the counters are side effects.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if COUNTING.load(Relaxed) && !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
        }
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's arguments.
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if COUNTING.load(Relaxed) && !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        }
        p
    }
}

/// Live heap bytes counted since counting was last switched on.
pub fn live_bytes() -> isize {
    LIVE.load(SeqCst)
}
