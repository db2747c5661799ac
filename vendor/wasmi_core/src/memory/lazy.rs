//! canister-vm patch: lazily zeroed memory from the operating system.
//!
//! A [`ByteBuffer`](super::buffer::ByteBuffer) backed by a `Vec<u8>` writes a zero over every
//! byte a memory is created or grown with, which makes every page of it resident and costs time
//! proportional to the size granted rather than the size used: growing a memory64 memory by
//! 10 GiB writes 10 GiB. On Linux a buffer is instead a private anonymous mapping: the kernel
//! hands out zero pages on first touch, and growing remaps (`mremap`, no copy) without writing.
//! `MAP_NORESERVE` keeps a large memory from being refused up front by overcommit accounting;
//! pages are only committed when written, as with any lazily touched allocation.

use core::ptr;

/// Maps `len` bytes (rounded up to whole OS pages) of fresh zeroed, readable and writable
/// private memory. `None` if the mapping fails (or `len` is zero).
pub fn map(len: usize) -> Option<*mut u8> {
    if len == 0 {
        return None;
    }
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing has no effect on
    // existing memory.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (addr != libc::MAP_FAILED).then_some(addr.cast())
}

/// Grows the mapping at `addr` from `old_len` to `new_len` bytes, moving it if needed (its pages
/// are moved, not copied). The new bytes read as zeros. On failure the old mapping is unchanged.
///
/// # Safety
///
/// `addr` and `old_len` must describe a mapping returned by [`map`] or [`remap`] and not yet
/// unmapped; on success the caller must use only the returned address afterwards.
pub unsafe fn remap(addr: *mut u8, old_len: usize, new_len: usize) -> Option<*mut u8> {
    // SAFETY: the caller guarantees `addr`/`old_len` name a live mapping of ours.
    let new = unsafe { libc::mremap(addr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE) };
    (new != libc::MAP_FAILED).then_some(new.cast())
}

/// Unmaps a mapping returned by [`map`] or [`remap`].
///
/// # Safety
///
/// `addr` and `len` must describe a live mapping of ours, which must not be used afterwards.
pub unsafe fn unmap(addr: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller. A failure leaks the mapping; nothing else can be done.
    unsafe {
        libc::munmap(addr.cast(), len);
    }
}
