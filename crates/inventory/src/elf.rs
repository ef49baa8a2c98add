//! Just enough ELF to find a named section (32/64-bit, either byte order),
//! reading only the headers and the section itself.

/// Reads `length` bytes at `offset`; `None` when the file is shorter.
pub(crate) type ReadAt<'a> = &'a dyn Fn(u64, u64) -> Option<Vec<u8>>;

/// The files worth opening as ELF executables: an execute bit set, room
/// for the headers, and within the size limit.
pub(crate) fn executables<'a>(
    files: &'a [crate::SourceFile],
    limits: &crate::Limits,
) -> impl Iterator<Item = &'a crate::SourceFile> {
    let largest = limits.max_binary_bytes;
    files
        .iter()
        .filter(move |file| file.mode & 0o111 != 0 && file.size >= 64 && file.size <= largest)
}

/// Reads of `path` in `source` for [`ReadAt`]: only complete ones count.
pub(crate) fn exact_reads<'a>(
    source: &'a dyn crate::FileSource,
    path: &'a std::path::Path,
) -> impl Fn(u64, u64) -> Option<Vec<u8>> + 'a {
    move |offset, length| {
        source
            .read_at(path, offset, length)
            .ok()
            .filter(|bytes| bytes.len() as u64 == length)
    }
}

struct Elf<'a> {
    read: ReadAt<'a>,
    is_64: bool,
    little_endian: bool,
}

impl Elf<'_> {
    fn number(&self, bytes: &[u8], offset: usize, width: usize) -> Option<u64> {
        let slice = bytes.get(offset..offset + width)?;
        let mut value: u64 = 0;
        for index in 0..width {
            let byte = if self.little_endian {
                slice[width - 1 - index]
            } else {
                slice[index]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    }

    /// The (offset, size) of the section named `wanted`.
    fn find_section(&self, header: &[u8], wanted: &str) -> Option<(u64, u64)> {
        let (shoff, shentsize, shnum, shstrndx) = if self.is_64 {
            (
                self.number(header, 0x28, 8)?,
                self.number(header, 0x3A, 2)?,
                self.number(header, 0x3C, 2)?,
                self.number(header, 0x3E, 2)?,
            )
        } else {
            (
                self.number(header, 0x20, 4)?,
                self.number(header, 0x2E, 2)?,
                self.number(header, 0x30, 2)?,
                self.number(header, 0x32, 2)?,
            )
        };
        let minimum = if self.is_64 { 64 } else { 40 };
        if shnum == 0 || shentsize < minimum || shstrndx >= shnum || shnum > 65_535 {
            return None;
        }
        let table = (self.read)(shoff, shentsize.checked_mul(shnum)?)?;
        let section = |index: u64| -> Option<(u64, u64, u64)> {
            let base = usize::try_from(index * shentsize).ok()?;
            if self.is_64 {
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
        let (_, names_offset, names_size) = section(shstrndx)?;
        let names = (self.read)(names_offset, names_size.min(1 << 20))?;
        for index in 0..shnum {
            let (name_offset, offset, size) = section(index)?;
            let name_start = usize::try_from(name_offset).ok()?;
            let name = names.get(name_start..)?.split(|&b| b == 0).next()?;
            if name == wanted.as_bytes() {
                return Some((offset, size));
            }
        }
        None
    }
}

/// The (offset, size) of the section named `wanted`, when the file is ELF and has it.
pub(crate) fn find_section(read: ReadAt<'_>, wanted: &str) -> Option<(u64, u64)> {
    let header = read(0, 64).or_else(|| read(0, 52))?;
    if header.len() < 52 || &header[..4] != b"\x7fELF" {
        return None;
    }
    let elf = Elf {
        read,
        is_64: header[4] == 2,
        little_endian: header[5] != 2,
    };
    elf.find_section(&header, wanted)
}
