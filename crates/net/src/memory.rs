//! How a long-running node gives freed memory back to the system.
//!
//! glibc's malloc serves a request of 128 KiB or more with a mapping of its
//! own, which a free returns to the system at once. But the first time such
//! a block is freed, glibc raises that threshold to the block's size (up to
//! 32 MiB), so that from then on blocks of that size come from the heap and
//! a free keeps them there. A session's compression contexts (one to
//! sixteen megabytes each) are exactly such blocks, and the edge frees them
//! as soon as a session's line rests: with the adaptive threshold its RSS
//! stayed at the peak anyway. Figure 5 of the bench, 1,000 sessions, RSS
//! read 3 s after they opened: 924,447 bytes per idle session with the
//! adaptive threshold, 168,612 with it pinned (200 active sessions:
//! 3,429,724 and 200,376). Pinning the threshold turns the adaptation off.
//! (Since then a node keeps up to 16 contexts whose frames ended for the
//! next frames to take, `causeway_wire::ContextPool`: a bounded few
//! megabytes, instead of a mapping made, faulted in and unmapped per frame.)
//!
//! Called once by each binary before it starts its runtime; nothing in a
//! simulation calls it.

/// Pins glibc's mmap threshold at its default (128 KiB), so that large
/// blocks are always returned to the system when freed. A no-op elsewhere.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
