//! `raw_stable`: exposes the eight raw `ic0.stable*` system calls one to one, all as updates.
//!
//! Interface:
//! - `size32() -> (nat32)`, `size64() -> (nat64)`
//! - `grow32(n: nat32) -> (int32)`, `grow64(n: nat64) -> (int64)`
//! - `read32(off: nat32, len: nat32) -> (blob)`, `write32(off: nat32, data: blob) -> ()`
//! - `read64(off: nat64, len: nat64) -> (blob)`, `write64(off: nat64, data: blob) -> ()`
//! - raw heap-pointer variants, passing a caller-chosen heap address straight through:
//!   `read32_to(dst: nat32, off: nat32, len: nat32) -> ()`,
//!   `write32_from(off: nat32, src: nat32, len: nat32) -> ()`,
//!   `read64_to(dst: nat64, off: nat64, len: nat64) -> ()`,
//!   `write64_from(off: nat64, src: nat64, len: nat64) -> ()`

use serde_bytes::ByteBuf;

#[link(wasm_import_module = "ic0")]
unsafe extern "C" {
    fn stable_size() -> u32;
    fn stable_grow(new_pages: u32) -> i32;
    fn stable_read(dst: u32, offset: u32, size: u32);
    fn stable_write(offset: u32, src: u32, size: u32);
    fn stable64_size() -> u64;
    fn stable64_grow(new_pages: u64) -> i64;
    fn stable64_read(dst: u64, offset: u64, size: u64);
    fn stable64_write(offset: u64, src: u64, size: u64);
}

#[ic_cdk::update]
fn size32() -> u32 {
    unsafe { stable_size() }
}

#[ic_cdk::update]
fn size64() -> u64 {
    unsafe { stable64_size() }
}

#[ic_cdk::update]
fn grow32(n: u32) -> i32 {
    unsafe { stable_grow(n) }
}

#[ic_cdk::update]
fn grow64(n: u64) -> i64 {
    unsafe { stable64_grow(n) }
}

#[ic_cdk::update]
fn read32(off: u32, len: u32) -> ByteBuf {
    let mut buf = vec![0u8; len as usize];
    unsafe { stable_read(buf.as_mut_ptr() as u32, off, len) };
    ByteBuf::from(buf)
}

#[ic_cdk::update]
fn write32(off: u32, data: ByteBuf) {
    unsafe { stable_write(off, data.as_ptr() as u32, data.len() as u32) };
}

#[ic_cdk::update]
fn read64(off: u64, len: u64) -> ByteBuf {
    let mut buf = vec![0u8; usize::try_from(len).expect("read64: length does not fit the heap")];
    unsafe { stable64_read(buf.as_mut_ptr() as u64, off, len) };
    ByteBuf::from(buf)
}

#[ic_cdk::update]
fn write64(off: u64, data: ByteBuf) {
    unsafe { stable64_write(off, data.as_ptr() as u64, data.len() as u64) };
}

#[ic_cdk::update]
fn read32_to(dst: u32, off: u32, len: u32) {
    unsafe { stable_read(dst, off, len) };
}

#[ic_cdk::update]
fn write32_from(off: u32, src: u32, len: u32) {
    unsafe { stable_write(off, src, len) };
}

#[ic_cdk::update]
fn read64_to(dst: u64, off: u64, len: u64) {
    unsafe { stable64_read(dst, off, len) };
}

#[ic_cdk::update]
fn write64_from(off: u64, src: u64, len: u64) {
    unsafe { stable64_write(off, src, len) };
}
