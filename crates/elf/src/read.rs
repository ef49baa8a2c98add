//! Reading ELF objects (32/64-bit, either byte order) through positioned
//! reads: the header, a named section, and the dynamic linking facts
//! (interpreter, `DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH`). Only the parts
//! asked for are read, so cataloging a large binary costs a few small
//! reads, not the whole file. Malformed input is `None`, never a panic.

/// Reads `length` bytes at `offset`; `None` unless all of them are there.
pub type ReadAt<'a> = &'a dyn Fn(u64, u64) -> Option<Vec<u8>>;

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
/// Larger string tables or dynamic sections than these are not real objects.
const MAX_STRTAB_BYTES: u64 = 64 << 20;
const MAX_DYNAMIC_ENTRIES: u64 = 1 << 16;
const MAX_INTERPRETER_BYTES: u64 = 4096;

/// The ELF header fields the readers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// ELFCLASS64.
    pub class64: bool,
    /// ELFDATA2LSB.
    pub little_endian: bool,
    /// `e_type` (2 executable, 3 shared object or PIE).
    pub kind: u16,
    /// `e_machine`.
    pub machine: u16,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
}

/// What the dynamic loader needs to know about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// ELFCLASS64.
    pub class64: bool,
    /// `e_machine`.
    pub machine: u16,
    /// A program (ET_EXEC, or anything with an interpreter), not only a library.
    pub executable: bool,
    /// `PT_INTERP`, the loader it names.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` entries (colon lists split).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` entries.
    pub runpath: Vec<String>,
}

fn number(bytes: &[u8], offset: usize, width: usize, little_endian: bool) -> Option<u64> {
    let slice = bytes.get(offset..offset.checked_add(width)?)?;
    let mut value: u64 = 0;
    for index in 0..width {
        let byte = if little_endian {
            slice[width - 1 - index]
        } else {
            slice[index]
        };
        value = (value << 8) | u64::from(byte);
    }
    Some(value)
}

impl Header {
    /// Reads the header; `None` when the object is not ELF.
    pub fn read(read: ReadAt<'_>) -> Option<Self> {
        let bytes = read(0, 64).or_else(|| read(0, 52))?;
        if bytes.len() < 52 || &bytes[..4] != b"\x7fELF" {
            return None;
        }
        let class64 = match bytes[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little_endian = match bytes[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        if class64 && bytes.len() < 64 {
            return None;
        }
        let field = |offset: usize, width: usize| number(&bytes, offset, width, little_endian);
        let (phoff, shoff, rest) = if class64 {
            (field(0x20, 8)?, field(0x28, 8)?, 0x36)
        } else {
            (field(0x1C, 4)?, field(0x20, 4)?, 0x2A)
        };
        Some(Self {
            class64,
            little_endian,
            kind: u16::try_from(field(0x10, 2)?).ok()?,
            machine: u16::try_from(field(0x12, 2)?).ok()?,
            phoff,
            phentsize: field(rest, 2)?,
            phnum: field(rest + 2, 2)?,
            shoff,
            shentsize: field(rest + 4, 2)?,
            shnum: field(rest + 6, 2)?,
            shstrndx: field(rest + 8, 2)?,
        })
    }

    fn number(&self, bytes: &[u8], offset: usize, width: usize) -> Option<u64> {
        number(bytes, offset, width, self.little_endian)
    }

    /// Program headers as (type, offset, vaddr, filesz).
    fn segments(&self, read: ReadAt<'_>) -> Option<Vec<(u32, u64, u64, u64)>> {
        let minimum = if self.class64 { 56 } else { 32 };
        if self.phnum == 0 {
            return Some(Vec::new());
        }
        if self.phentsize < minimum || self.phnum > 65_535 {
            return None;
        }
        let table = read(self.phoff, self.phentsize.checked_mul(self.phnum)?)?;
        (0..self.phnum)
            .map(|index| {
                let base = usize::try_from(index * self.phentsize).ok()?;
                let kind = u32::try_from(self.number(&table, base, 4)?).ok()?;
                if self.class64 {
                    Some((
                        kind,
                        self.number(&table, base + 8, 8)?,
                        self.number(&table, base + 16, 8)?,
                        self.number(&table, base + 32, 8)?,
                    ))
                } else {
                    Some((
                        kind,
                        self.number(&table, base + 4, 4)?,
                        self.number(&table, base + 8, 4)?,
                        self.number(&table, base + 16, 4)?,
                    ))
                }
            })
            .collect()
    }

    /// The (offset, size) of the section named `wanted`.
    pub fn find_section(&self, read: ReadAt<'_>, wanted: &str) -> Option<(u64, u64)> {
        let minimum = if self.class64 { 64 } else { 40 };
        if self.shnum == 0
            || self.shentsize < minimum
            || self.shstrndx >= self.shnum
            || self.shnum > 65_535
        {
            return None;
        }
        let table = read(self.shoff, self.shentsize.checked_mul(self.shnum)?)?;
        let section = |index: u64| -> Option<(u64, u64, u64)> {
            let base = usize::try_from(index * self.shentsize).ok()?;
            if self.class64 {
                Some((
                    self.number(&table, base, 4)?,
                    self.number(&table, base + 0x18, 8)?,
                    self.number(&table, base + 0x20, 8)?,
                ))
            } else {
                Some((
                    self.number(&table, base, 4)?,
                    self.number(&table, base + 0x10, 4)?,
                    self.number(&table, base + 0x14, 4)?,
                ))
            }
        };
        let (_, names_offset, names_size) = section(self.shstrndx)?;
        let names = read(names_offset, names_size.min(1 << 20))?;
        for index in 0..self.shnum {
            let (name_offset, offset, size) = section(index)?;
            let name_start = usize::try_from(name_offset).ok()?;
            let name = names.get(name_start..)?.split(|&b| b == 0).next()?;
            if name == wanted.as_bytes() {
                return Some((offset, size));
            }
        }
        None
    }

    /// The dynamic linking facts; `None` for anything but executables and
    /// shared objects, or when the dynamic section is malformed.
    pub fn dynamic(&self, read: ReadAt<'_>) -> Option<ElfInfo> {
        if self.kind != ET_EXEC && self.kind != ET_DYN {
            return None;
        }
        let segments = self.segments(read)?;
        let interpreter = match segments.iter().find(|segment| segment.0 == PT_INTERP) {
            Some(&(_, offset, _, size)) => {
                let bytes = read(offset, size.min(MAX_INTERPRETER_BYTES))?;
                let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
                Some(String::from_utf8_lossy(text).into_owned())
            }
            None => None,
        };
        let mut info = ElfInfo {
            class64: self.class64,
            machine: self.machine,
            executable: self.kind == ET_EXEC || interpreter.is_some(),
            interpreter,
            needed: Vec::new(),
            rpath: Vec::new(),
            runpath: Vec::new(),
        };
        let Some(&(_, offset, _, size)) = segments.iter().find(|segment| segment.0 == PT_DYNAMIC)
        else {
            return Some(info);
        };
        let entry_size: u64 = if self.class64 { 16 } else { 8 };
        let count = (size / entry_size).min(MAX_DYNAMIC_ENTRIES);
        let table = read(offset, count * entry_size)?;
        let width = usize::try_from(entry_size / 2).ok()?;
        let mut entries = Vec::new();
        for index in 0..count {
            let base = usize::try_from(index * entry_size).ok()?;
            let tag = self.number(&table, base, width)?;
            if tag == DT_NULL {
                break;
            }
            entries.push((tag, self.number(&table, base + width, width)?));
        }
        let value = |wanted: u64| {
            entries
                .iter()
                .find(|(tag, _)| *tag == wanted)
                .map(|(_, value)| *value)
        };
        let (Some(address), Some(strings_size)) = (value(DT_STRTAB), value(DT_STRSZ)) else {
            return Some(info);
        };
        // DT_STRTAB is an address: the loadable segment holding it gives the file offset.
        let strings_offset = segments.iter().find_map(|&(kind, offset, vaddr, filesz)| {
            (kind == PT_LOAD && vaddr <= address && address < vaddr.checked_add(filesz)?)
                .then(|| offset.checked_add(address - vaddr))
                .flatten()
        })?;
        let strings = read(strings_offset, strings_size.min(MAX_STRTAB_BYTES))?;
        let string = |offset: u64| -> Option<String> {
            let start = usize::try_from(offset).ok()?;
            let text = strings.get(start..)?.split(|&b| b == 0).next()?;
            Some(String::from_utf8_lossy(text).into_owned())
        };
        let paths = |text: String| -> Vec<String> {
            text.split(':')
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect()
        };
        for (tag, value) in &entries {
            match *tag {
                DT_NEEDED => info.needed.push(string(*value)?),
                DT_RPATH => info.rpath.extend(paths(string(*value)?)),
                DT_RUNPATH => info.runpath.extend(paths(string(*value)?)),
                _ => {}
            }
        }
        Some(info)
    }
}

/// Reads of a byte slice for [`ReadAt`].
pub fn slice_reads(bytes: &[u8]) -> impl Fn(u64, u64) -> Option<Vec<u8>> + '_ {
    move |offset, length| {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(length).ok()?)?;
        bytes.get(start..end).map(<[u8]>::to_vec)
    }
}

/// The (offset, size) of the section named `wanted`, when the file is ELF and has it.
pub fn find_section(read: ReadAt<'_>, wanted: &str) -> Option<(u64, u64)> {
    Header::read(read)?.find_section(read, wanted)
}

/// The dynamic linking facts of an object, when it is an ELF executable or shared object.
pub fn dynamic_info(read: ReadAt<'_>) -> Option<ElfInfo> {
    Header::read(read)?.dynamic(read)
}

/// [`dynamic_info`] of an object held in memory.
pub fn parse(bytes: &[u8]) -> Option<ElfInfo> {
    dynamic_info(&slice_reads(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_itself_parses() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = parse(&bytes).expect("the running test binary is an ELF executable");
        assert!(info.executable);
        assert!(info.needed.iter().any(|name| name.starts_with("libc.so")));
        assert!(
            info.interpreter
                .as_deref()
                .is_some_and(|loader| loader.contains("ld-"))
        );
        let read = slice_reads(&bytes);
        assert!(find_section(&read, ".text").is_some());
        assert!(find_section(&read, ".no-such-section").is_none());
        assert!(parse(b"#!/bin/sh\necho not elf\n").is_none());
    }

    #[test]
    fn truncated_and_corrupt_objects_never_panic() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        for cut in [16, 52, 63, 64, 200, 4096] {
            let _ = parse(&bytes[..cut.min(bytes.len())]);
        }
        let mut garbage = bytes[..200].to_vec();
        garbage.extend_from_slice(&[0xff; 64]);
        let _ = parse(&garbage);
        // Headers claiming huge tables.
        let mut huge = bytes[..64].to_vec();
        huge[0x38..0x3A].copy_from_slice(&[0xff, 0xff]);
        let _ = parse(&huge);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
            bytes.extend(tail);
            let _ = parse(&bytes);
            let read = slice_reads(&bytes);
            let _ = find_section(&read, ".go.buildinfo");
        }
    }
}
