//! What the state layer asks of the operating system beyond portable `std`: the data extents
//! of a sparse file. Linux has them; elsewhere (other Unixes, WASI) the portable fallback
//! applies: read every page. (Lazily zeroed Wasm memories come from the patched wasmi_core,
//! `vendor/wasmi_core/src/memory/lazy.rs`.)

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
