//! Page files: a memory's bytes on disk, read through a memory mapping where the platform has
//! one and through plain reads where it does not (WASI). The state layer's platform-dependent
//! code lives here and in [`os`](super::os).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::hash::PAGE_SIZE;
use crate::error::Error;

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A read-only view of a page file.
pub(crate) enum PageView {
    /// The file is mapped: pages are read from the page cache on first touch, holes of a sparse
    /// file cost no I/O.
    #[cfg(not(target_os = "wasi"))]
    Mapped(memmap2::Mmap),
    /// The file's bytes, read in full (where memory mappings are unavailable).
    Buffer(Vec<u8>),
}

impl PageView {
    /// Opens the page file at `path` for reading (an absent file reads as empty).
    pub(crate) fn open(path: &Path) -> Result<PageView, Error> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PageView::Buffer(Vec::new()));
            }
            Err(e) => return Err(io_err(path, e)),
        };
        let len = file.metadata().map_err(|e| io_err(path, e))?.len();
        if len == 0 {
            return Ok(PageView::Buffer(Vec::new()));
        }
        #[cfg(not(target_os = "wasi"))]
        {
            // SAFETY: the state directory is owned by this process while a canister runs (page
            // files are only written by checkpoints of the same process, after the view is
            // dropped); a concurrent external writer is outside the supported use.
            match unsafe { memmap2::Mmap::map(&file) } {
                Ok(map) => return Ok(PageView::Mapped(map)),
                Err(_) => { /* fall back to reading */ }
            }
        }
        let mut bytes = Vec::new();
        let mut file = file;
        file.read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
        Ok(PageView::Buffer(bytes))
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            #[cfg(not(target_os = "wasi"))]
            PageView::Mapped(map) => map,
            PageView::Buffer(bytes) => bytes,
        }
    }
}

/// A memory read from a page file: its bytes and which of its 4 KiB pages are non-zero.
pub(crate) struct MemoryImage {
    /// The bytes, in a buffer whose zero pages were never written (the OS maps them lazily).
    pub(crate) bytes: Vec<u8>,
    /// The non-zero pages, ascending; every other page is zero.
    pub(crate) nonzero: Vec<u64>,
}

/// Copies the first `len` bytes of a page file into a new zeroed buffer, touching only the
/// non-zero pages of the destination: a mostly-zero (sparse) memory stays mostly unallocated.
/// Where the file system reports a sparse file's data extents (Linux `SEEK_DATA`/`SEEK_HOLE`),
/// only the extents are read: the holes are never mapped in, so opening a canister costs
/// resident memory, I/O and CPU for the pages it wrote, not for its memory size.
pub(crate) fn read_memory(path: &Path, len: u64) -> Result<MemoryImage, Error> {
    let view = PageView::open(path)?;
    let src = view.bytes();
    if (src.len() as u64) < len {
        return Err(Error::State(crate::error::StateError::Corrupt {
            path: path.to_path_buf(),
            why: format!("holds {} bytes, the checkpoint says {len}", src.len()),
        }));
    }
    let len = usize::try_from(len).map_err(|_| {
        Error::State(crate::error::StateError::Corrupt {
            path: path.to_path_buf(),
            why: format!("{len} bytes do not fit in this host's memory"),
        })
    })?;
    let restore_err = |why: String| {
        Error::State(crate::error::StateError::Restore {
            why: format!("{why} for {}", path.display()),
        })
    };
    let extents: Option<Vec<(usize, usize)>> = match &view {
        #[cfg(not(target_os = "wasi"))]
        PageView::Mapped(_) => super::os::data_extents(path, len),
        _ => None,
    };
    let extents = extents.unwrap_or_else(|| vec![(0, len)]);
    let mut bytes = super::zeroed(len).map_err(restore_err)?;
    let mut nonzero = Vec::new();
    for (start, end) in extents {
        // Extents are page-aligned on every file system that reports them; round anyway.
        let start = start / PAGE_SIZE * PAGE_SIZE;
        let end = end.min(len);
        if start < end {
            super::copy_nonzero_pages(
                &mut bytes[start..end],
                &src[start..end],
                start / PAGE_SIZE,
                &mut nonzero,
            );
        }
    }
    // Rounding can start two extents in one page.
    nonzero.dedup();
    Ok(MemoryImage { bytes, nonzero })
}

/// A page file opened for writing.
pub(crate) struct PageWriter {
    path: PathBuf,
    file: File,
}

impl PageWriter {
    /// Opens (creating if absent) the page file at `path`.
    pub(crate) fn open(path: &Path) -> Result<PageWriter, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        Ok(PageWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Sets the file's length (new bytes read as zero; a sparse hole where supported).
    pub(crate) fn set_len(&mut self, len: u64) -> Result<(), Error> {
        self.file.set_len(len).map_err(|e| io_err(&self.path, e))
    }

    /// Writes one 4 KiB page.
    pub(crate) fn write_page(&mut self, page: u64, bytes: &[u8]) -> Result<(), Error> {
        self.file
            .seek(SeekFrom::Start(page * PAGE_SIZE as u64))
            .map_err(|e| io_err(&self.path, e))?;
        self.file
            .write_all(bytes)
            .map_err(|e| io_err(&self.path, e))
    }

    /// Flushes the file's data to stable storage.
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        self.file.sync_all().map_err(|e| io_err(&self.path, e))
    }
}
