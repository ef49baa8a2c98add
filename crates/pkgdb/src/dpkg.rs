//! dpkg's database as records a new package version is installed into.
//!
//! Reading keeps every status paragraph losslessly and finds each
//! package's `info/` files; installing a version replaces the paragraph
//! (built from the `.deb`'s control the way dpkg builds it: dpkg's field
//! order, `Status: install ok installed`, `Conffiles` with the new
//! distributed hashes) and the package's `info/` files (`list`,
//! `md5sums`, `conffiles` and every other control member but `control`).
//! Writing yields the file changes: the whole `status` file (untouched
//! paragraphs as they were, new packages in name order), or the
//! `status.d/` entries of a distroless image, and the `info/` files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sealcraft_deb::Paragraph;
use sealcraft_deb::deb822;
use sealcraft_inventory::FileSource;

use crate::{Error, FileChange};

/// The status file.
pub const STATUS: &str = "var/lib/dpkg/status";
/// The distroless form: one control paragraph per package.
pub const STATUS_D: &str = "var/lib/dpkg/status.d";
/// Per-package files.
pub const INFO: &str = "var/lib/dpkg/info";
const MAX_BYTES: u64 = 256 << 20;

/// The fields dpkg writes in this order, before any other field.
const FIELD_ORDER: [&str; 28] = [
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Control fields that describe an archive, not an installed package.
const ARCHIVE_FIELDS: [&str; 3] = ["Filename", "Size", "MD5sum"];

/// Which form the database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DpkgForm {
    /// `/var/lib/dpkg/status` and `info/`.
    Status,
    /// `/var/lib/dpkg/status.d/<package>` (distroless), no `info/`.
    StatusD,
}

/// One conffile as dpkg records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conffile {
    /// Absolute path (`/etc/adduser.conf`).
    pub path: String,
    /// MD5 of the file as the package shipped it, or `newconffile`.
    pub md5: String,
    /// `obsolete`, `remove-on-upgrade`.
    pub flags: Vec<String>,
}

impl Conffile {
    /// The path relative to the root.
    pub fn relative(&self) -> PathBuf {
        PathBuf::from(self.path.trim_start_matches('/'))
    }
}

/// Parses a status `Conffiles` value.
pub fn parse_conffiles(value: &str) -> Vec<Conffile> {
    value
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let path = words.next()?;
            let md5 = words.next()?;
            Some(Conffile {
                path: path.to_owned(),
                md5: md5.to_owned(),
                flags: words.map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// Parses a package's `conffiles` control member: one path per line,
/// flags (`remove-on-upgrade`) before it. The hashes are not known yet.
pub fn parse_control_conffiles(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut words: Vec<&str> = line.split_whitespace().collect();
            let path = words.pop()?;
            Some((
                path.to_owned(),
                words.into_iter().map(str::to_owned).collect(),
            ))
        })
        .collect()
}

fn conffiles_value(conffiles: &[Conffile]) -> String {
    let mut value = String::new();
    for conffile in conffiles {
        value.push_str("\n ");
        value.push_str(&conffile.path);
        value.push(' ');
        value.push_str(&conffile.md5);
        for flag in &conffile.flags {
            value.push(' ');
            value.push_str(flag);
        }
    }
    value
}

/// One package of the database.
#[derive(Debug, Clone)]
pub struct DpkgRecord {
    /// The status paragraph (or the `status.d` entry).
    pub paragraph: Paragraph,
    /// `Package`.
    pub name: String,
    /// `Architecture`.
    pub architecture: String,
    /// `Version`.
    pub version: String,
    /// `Multi-Arch`.
    pub multi_arch: Option<String>,
    /// Installed (`Status: … installed`, or no Status in `status.d`).
    pub installed: bool,
    /// The `status.d` file it came from.
    pub status_d_file: Option<String>,
    /// Its files under `info/` (relative paths).
    pub info_files: Vec<PathBuf>,
    /// The paths it owns, absolute as in `.list` (`/usr/bin/x`), `/.` left out.
    pub files: Vec<String>,
    /// Its conffiles.
    pub conffiles: Vec<Conffile>,
    replacement: Option<BTreeMap<String, Vec<u8>>>,
}

impl DpkgRecord {
    /// The stem of its `info/` files: `name:arch` for `Multi-Arch: same`, else `name`.
    pub fn info_stem(&self) -> String {
        info_stem(&self.name, &self.architecture, self.multi_arch.as_deref())
    }

    /// Whether a new version was installed into it.
    pub fn is_replaced(&self) -> bool {
        self.replacement.is_some()
    }
}

/// `name:arch` for `Multi-Arch: same` packages, `name` otherwise.
pub fn info_stem(name: &str, architecture: &str, multi_arch: Option<&str>) -> String {
    if multi_arch == Some("same") {
        format!("{name}:{architecture}")
    } else {
        name.to_owned()
    }
}

/// A package version to install, as the patcher read it from its `.deb`.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The `control` paragraph.
    pub control: Paragraph,
    /// The other control members (`md5sums`, `postinst`, …).
    pub control_files: BTreeMap<String, Vec<u8>>,
    /// The data entries in archive order, absolute (`/.` for the root).
    pub list: Vec<String>,
    /// MD5 of each regular file that is not a conffile (path relative, no leading slash), used
    /// when the package ships no `md5sums`.
    pub file_md5s: Vec<(String, String)>,
    /// The conffiles with the MD5 of the file as this version ships it.
    pub conffiles: Vec<Conffile>,
}

/// The database of an image.
#[derive(Debug, Clone)]
pub struct DpkgDatabase {
    /// Its form.
    pub form: DpkgForm,
    /// Its packages, in database order.
    pub records: Vec<DpkgRecord>,
}

fn read_file(source: &dyn FileSource, path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match source.read(path, MAX_BYTES) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::Read {
            path: format!("/{}", path.display()),
            source: error,
        }),
    }
}

fn record_of(paragraph: Paragraph, status_d_file: Option<String>) -> Option<DpkgRecord> {
    let name = paragraph.single("Package")?.to_owned();
    let installed = paragraph
        .single("Status")
        .is_none_or(|status| status.split_whitespace().last() == Some("installed"));
    Some(DpkgRecord {
        name,
        architecture: paragraph
            .single("Architecture")
            .unwrap_or_default()
            .to_owned(),
        version: paragraph.single("Version").unwrap_or_default().to_owned(),
        multi_arch: paragraph.single("Multi-Arch").map(str::to_owned),
        installed,
        status_d_file,
        info_files: Vec::new(),
        files: Vec::new(),
        conffiles: paragraph
            .get("Conffiles")
            .map(parse_conffiles)
            .unwrap_or_default(),
        paragraph,
        replacement: None,
    })
}

impl DpkgDatabase {
    /// The image's dpkg database, if it has one.
    pub fn read(source: &dyn FileSource) -> Result<Option<Self>, Error> {
        let names: BTreeSet<PathBuf> = source.files().into_iter().map(|file| file.path).collect();
        let (form, mut records) = if let Some(bytes) = read_file(source, Path::new(STATUS))? {
            let records = deb822::parse(&String::from_utf8_lossy(&bytes))
                .into_iter()
                .filter_map(|paragraph| record_of(paragraph, None))
                .collect();
            (DpkgForm::Status, records)
        } else {
            let mut records = Vec::new();
            for path in names
                .iter()
                .filter(|path| path.parent() == Some(Path::new(STATUS_D)))
            {
                let file_name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if file_name.ends_with(".md5sums") {
                    continue;
                }
                let Some(bytes) = read_file(source, path)? else {
                    continue;
                };
                for paragraph in deb822::parse(&String::from_utf8_lossy(&bytes)) {
                    records.extend(record_of(paragraph, Some(file_name.clone())));
                }
            }
            if records.is_empty() {
                return Ok(None);
            }
            (DpkgForm::StatusD, records)
        };
        for record in &mut records {
            match form {
                DpkgForm::Status => {
                    let stems = [
                        format!("{}:{}", record.name, record.architecture),
                        record.name.clone(),
                    ];
                    for path in names
                        .range(PathBuf::from(INFO)..)
                        .take_while(|path| path.starts_with(INFO))
                    {
                        let Some(file_name) = path.file_name().map(|name| name.to_string_lossy())
                        else {
                            continue;
                        };
                        let owned = stems.iter().any(|stem| {
                            file_name
                                .strip_prefix(stem.as_str())
                                .and_then(|rest| rest.strip_prefix('.'))
                                .is_some_and(|extension| !extension.contains('.'))
                        });
                        if owned {
                            record.info_files.push(path.clone());
                        }
                    }
                    let list = record
                        .info_files
                        .iter()
                        .find(|path| {
                            path.extension()
                                .is_some_and(|extension| extension == "list")
                        })
                        .cloned();
                    if let Some(list) = list
                        && let Some(bytes) = read_file(source, &list)?
                    {
                        record.files = String::from_utf8_lossy(&bytes)
                            .lines()
                            .filter(|line| !line.is_empty() && *line != "/.")
                            .map(str::to_owned)
                            .collect();
                    }
                }
                DpkgForm::StatusD => {
                    let Some(file) = &record.status_d_file else {
                        continue;
                    };
                    let md5sums = Path::new(STATUS_D).join(format!("{file}.md5sums"));
                    if let Some(bytes) = read_file(source, &md5sums)? {
                        record.files = String::from_utf8_lossy(&bytes)
                            .lines()
                            .filter_map(|line| line.split_once("  ").map(|(_, path)| path))
                            .map(|path| format!("/{}", path.trim_start_matches('/')))
                            .collect();
                    }
                }
            }
        }
        Ok(Some(Self { form, records }))
    }

    /// The installed package `name` of `architecture`; `all` on either
    /// side matches (a package can become, or stop being, arch:all).
    pub fn find(&self, name: &str, architecture: &str) -> Option<&DpkgRecord> {
        self.records.iter().find(|record| {
            record.installed
                && record.name == name
                && (record.architecture == architecture
                    || record.architecture == "all"
                    || architecture == "all")
        })
    }

    /// Installs `new` in place of the installed package of the same name
    /// and architecture, or as a new package.
    pub fn install(&mut self, new: NewVersion) {
        let name = new.control.single("Package").unwrap_or_default().to_owned();
        let architecture = new
            .control
            .single("Architecture")
            .unwrap_or_default()
            .to_owned();
        let multi_arch = new.control.single("Multi-Arch").map(str::to_owned);
        let status_paragraph = status_paragraph(&new.control, &new.conffiles);
        let paragraph = match self.form {
            DpkgForm::Status => status_paragraph,
            // dpkg-deb --field output: the control paragraph as shipped.
            DpkgForm::StatusD => new.control.clone(),
        };
        let stem = info_stem(&name, &architecture, multi_arch.as_deref());
        let mut info: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if self.form == DpkgForm::Status {
            let mut list = new.list.join("\n");
            list.push('\n');
            info.insert(format!("{stem}.list"), list.into_bytes());
            if !new.conffiles.is_empty() {
                let mut text = String::new();
                for conffile in &new.conffiles {
                    for flag in conffile
                        .flags
                        .iter()
                        .filter(|flag| flag.as_str() != "obsolete")
                    {
                        text.push_str(flag);
                        text.push(' ');
                    }
                    text.push_str(&conffile.path);
                    text.push('\n');
                }
                info.insert(format!("{stem}.conffiles"), text.into_bytes());
            }
            for (member, bytes) in &new.control_files {
                if member != "control" && member != "conffiles" && member != "md5sums" {
                    info.insert(format!("{stem}.{member}"), bytes.clone());
                }
            }
        }
        let md5sums = new
            .control_files
            .get("md5sums")
            .cloned()
            .unwrap_or_else(|| {
                let mut text = String::new();
                for (path, md5) in &new.file_md5s {
                    text.push_str(&format!("{md5}  {path}\n"));
                }
                text.into_bytes()
            });
        info.insert(format!("{stem}.md5sums"), md5sums);
        let files: Vec<String> = new
            .list
            .iter()
            .filter(|path| path.as_str() != "/.")
            .cloned()
            .collect();
        let existing = self.records.iter().position(|record| {
            record.name == name
                && (record.architecture == architecture
                    || record.architecture == "all"
                    || architecture == "all")
        });
        let status_d_file = match existing {
            Some(index) => self.records[index].status_d_file.clone(),
            None => (self.form == DpkgForm::StatusD).then(|| name.clone()),
        };
        let record = DpkgRecord {
            paragraph,
            name,
            architecture,
            version: new.control.single("Version").unwrap_or_default().to_owned(),
            multi_arch,
            installed: true,
            status_d_file,
            info_files: match existing {
                Some(index) => self.records[index].info_files.clone(),
                None => Vec::new(),
            },
            files,
            conffiles: new.conffiles,
            replacement: Some(info),
        };
        match existing {
            Some(index) => self.records[index] = record,
            None => self.records.push(record),
        }
    }

    /// The file changes that bring the image's database to this state.
    pub fn changes(&self) -> Vec<FileChange> {
        let mut changes = Vec::new();
        match self.form {
            DpkgForm::Status => {
                let (mut kept, mut added): (Vec<&DpkgRecord>, Vec<&DpkgRecord>) =
                    (Vec::new(), Vec::new());
                for record in &self.records {
                    if record.replacement.is_some() && record.info_files.is_empty() {
                        added.push(record);
                    } else {
                        kept.push(record);
                    }
                }
                // dpkg writes status in name order; new packages go where it would put them.
                added.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
                let mut ordered: Vec<&DpkgRecord> = Vec::new();
                let mut pending = added.into_iter().peekable();
                for record in kept {
                    while let Some(next) = pending.peek() {
                        if (&next.name, &next.architecture) < (&record.name, &record.architecture) {
                            ordered.extend(pending.next());
                        } else {
                            break;
                        }
                    }
                    ordered.push(record);
                }
                ordered.extend(pending);
                let paragraphs: Vec<Paragraph> = ordered
                    .iter()
                    .map(|record| record.paragraph.clone())
                    .collect();
                changes.push(FileChange::Write(
                    PathBuf::from(STATUS),
                    deb822::to_text(&paragraphs).into_bytes(),
                ));
                for record in &self.records {
                    let Some(info) = &record.replacement else {
                        continue;
                    };
                    let new_paths: BTreeSet<PathBuf> =
                        info.keys().map(|name| Path::new(INFO).join(name)).collect();
                    for old in record
                        .info_files
                        .iter()
                        .filter(|old| !new_paths.contains(*old))
                    {
                        changes.push(FileChange::Delete(old.clone()));
                    }
                    for (name, bytes) in info {
                        changes.push(FileChange::Write(Path::new(INFO).join(name), bytes.clone()));
                    }
                }
            }
            DpkgForm::StatusD => {
                for record in &self.records {
                    let (Some(info), Some(file)) = (&record.replacement, &record.status_d_file)
                    else {
                        continue;
                    };
                    changes.push(FileChange::Write(
                        Path::new(STATUS_D).join(file),
                        record.paragraph.to_text().into_bytes(),
                    ));
                    let stem = record.info_stem();
                    if let Some(md5sums) = info.get(&format!("{stem}.md5sums")) {
                        changes.push(FileChange::Write(
                            Path::new(STATUS_D).join(format!("{file}.md5sums")),
                            md5sums.clone(),
                        ));
                    }
                }
            }
        }
        changes
    }
}

/// The status paragraph dpkg writes for an installed `control`.
pub fn status_paragraph(control: &Paragraph, conffiles: &[Conffile]) -> Paragraph {
    let mut fields: Vec<(String, String)> = control
        .fields()
        .iter()
        .filter(|(name, _)| {
            !ARCHIVE_FIELDS
                .iter()
                .any(|archive| archive.eq_ignore_ascii_case(name))
                && !name.eq_ignore_ascii_case("Status")
                && !name.eq_ignore_ascii_case("Conffiles")
        })
        .cloned()
        .collect();
    fields.push(("Status".into(), "install ok installed".into()));
    if !conffiles.is_empty() {
        fields.push(("Conffiles".into(), conffiles_value(conffiles)));
    }
    let rank = |name: &str| {
        FIELD_ORDER
            .iter()
            .position(|known| known.eq_ignore_ascii_case(name))
            .unwrap_or(FIELD_ORDER.len())
    };
    // A stable sort keeps the control file's order among the fields dpkg does not know.
    fields.sort_by_key(|(name, _)| rank(name));
    Paragraph::from_fields(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROL: &str = "Package: libfoo1\nVersion: 1.2-1\nArchitecture: amd64\nMaintainer: A <a@example.com>\nInstalled-Size: 10\nDepends: libc6 (>= 2.34)\nMulti-Arch: same\nHomepage: https://example.com\nSection: libs\nPriority: optional\nDescription: foo\n a library\n .\n really.\n";

    #[test]
    fn the_status_paragraph_follows_dpkg_s_order() {
        let control = deb822::parse(CONTROL).remove(0);
        let paragraph = status_paragraph(
            &control,
            &[Conffile {
                path: "/etc/foo.conf".into(),
                md5: "0123456789abcdef0123456789abcdef".into(),
                flags: Vec::new(),
            }],
        );
        assert_eq!(
            paragraph.to_text(),
            "Package: libfoo1\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 10\nMaintainer: A <a@example.com>\nArchitecture: amd64\nMulti-Arch: same\nVersion: 1.2-1\nDepends: libc6 (>= 2.34)\nConffiles:\n /etc/foo.conf 0123456789abcdef0123456789abcdef\nDescription: foo\n a library\n .\n really.\nHomepage: https://example.com\n"
        );
        assert_eq!(info_stem("libfoo1", "amd64", Some("same")), "libfoo1:amd64");
        assert_eq!(info_stem("bash", "amd64", Some("foreign")), "bash");
    }

    #[test]
    fn conffile_lists_parse() {
        let parsed = parse_conffiles(
            "\n /etc/a 00112233445566778899aabbccddeeff\n /etc/b newconffile remove-on-upgrade\n /etc/c 00112233445566778899aabbccddeeff obsolete",
        );
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].md5, "newconffile");
        assert_eq!(parsed[1].flags, ["remove-on-upgrade"]);
        assert_eq!(parsed[2].flags, ["obsolete"]);
        assert_eq!(
            parse_control_conffiles("/etc/a\nremove-on-upgrade /etc/b\n"),
            [
                ("/etc/a".to_owned(), vec![]),
                ("/etc/b".to_owned(), vec!["remove-on-upgrade".to_owned()])
            ]
        );
    }
}
