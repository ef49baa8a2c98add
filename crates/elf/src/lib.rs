//! ELF objects as the image tools need them.
//!
//! - [`read`]: the header, named sections (the Go and Rust catalogers'
//!   build information) and the dynamic linking facts, through positioned
//!   reads so only the bytes asked for are read.
//! - [`loader`]: how the dynamic loader finds each `DT_NEEDED` name inside
//!   an image (RPATH, RUNPATH, ld.so.conf, the defaults), and the closure
//!   of a set of executables; hardening prunes outside it, image tests
//!   check that every entry resolves.

pub mod loader;
pub mod read;

pub use loader::{ImageFiles, Unresolved, default_dirs, ld_so_conf_dirs};
pub use read::{ElfInfo, Header, ReadAt, dynamic_info, find_section, parse, slice_reads};
