//! What the state layer asks of the operating system beyond portable `std`: the data extents
//! of a sparse file, and giving back pages known to hold only zeros. Linux has both; elsewhere
//! (other Unixes, WASI) the portable fallbacks apply: read every page, keep every page.

/// The data extents `[start, end)` of the first `len` bytes of the file at `path`, from
/// `SEEK_DATA`/`SEEK_HOLE`; `None` where the file system does not report them (then the caller
/// reads every page).
#[cfg(target_os = "linux")]
pub(crate) fn data_extents(path: &std::path::Path, len: usize) -> Option<Vec<(usize, usize)>> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).ok()?;
    let fd = file.as_raw_fd();
    let mut extents = Vec::new();
    let mut at: usize = 0;
    while at < len {
        // SAFETY: `fd` is an open descriptor owned by `file` for the whole loop; lseek has no
        // memory effects.
        let data = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: no data at or after `at` (the rest is a hole); anything else: unsupported.
            return (std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO))
                .then_some(extents);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole <= data {
            return None;
        }
        let (data, hole) = (data as usize, hole as usize);
        if data >= len {
            break;
        }
        extents.push((data, hole.min(len)));
        at = hole;
    }
    Some(extents)
}

/// See the Linux version: no extents are known here (WASI has no mapped page files, so it
/// never asks).
#[cfg(all(not(target_os = "linux"), not(target_os = "wasi")))]
pub(crate) fn data_extents(_path: &std::path::Path, _len: usize) -> Option<Vec<(usize, usize)>> {
    None
}

/// Gives the whole 4 KiB pages inside `bytes` back to the OS (`MADV_DONTNEED`), so they stop
/// counting as resident memory until next touched. Their contents do not change: the next
/// access of a released page of private anonymous memory finds a fresh zero page. Does nothing
/// where unsupported. Returns the number of bytes released.
///
/// # Safety
///
/// `bytes` must hold only zeros and lie in private anonymous memory (memory from the global
/// allocator qualifies); released pages of a file mapping would read back the file.
pub(crate) unsafe fn release_zero_pages(bytes: &mut [u8]) -> usize {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = super::hash::PAGE_SIZE;
        let addr = bytes.as_mut_ptr() as usize;
        let start = addr.next_multiple_of(PAGE);
        let end = (addr + bytes.len()) / PAGE * PAGE;
        if end > start {
            // SAFETY: `[start, end)` lies inside `bytes`, which the caller guarantees is zeroed
            // private anonymous memory: after MADV_DONTNEED it still reads as zeros.
            let rc = unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED)
            };
            if rc == 0 {
                return end - start;
            }
        }
        0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = bytes;
        0
    }
}
