//! The dynamic loader's search rules, and the closure of an image's executables.
//!
//! Resolution follows the dynamic loader: for each `DT_NEEDED` name, the
//! object's `DT_RPATH` (only when it has no `DT_RUNPATH`, and inherited from
//! the objects that loaded it), then its `DT_RUNPATH`, then the directories
//! of `/etc/ld.so.conf` (and its `include`s), then the default directories;
//! `$ORIGIN` expands to the object's directory, and a candidate must have the
//! same ELF class and machine. Paths are resolved inside the image, with
//! symlinks followed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::read::ElfInfo;

/// The default search directories for an ELF class.
pub fn default_dirs(class64: bool) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if class64 {
        dirs.extend(["lib64", "usr/lib64"].map(PathBuf::from));
    }
    dirs.extend(["lib", "usr/lib"].map(PathBuf::from));
    dirs
}

/// The directories `/etc/ld.so.conf` names, in order, `include` globs
/// expanded where they stand.
pub fn ld_so_conf_dirs(
    read: &dyn Fn(&Path) -> Option<String>,
    list: &dyn Fn(&Path) -> Vec<PathBuf>,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut seen = BTreeSet::new();
    conf_file(
        Path::new("etc/ld.so.conf"),
        read,
        list,
        &mut seen,
        &mut dirs,
    );
    dirs
}

fn conf_file(
    file: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
    list: &dyn Fn(&Path) -> Vec<PathBuf>,
    seen: &mut BTreeSet<PathBuf>,
    dirs: &mut Vec<PathBuf>,
) {
    // Include loops and absurd nesting end here.
    if !seen.insert(file.to_path_buf()) || seen.len() > 256 {
        return;
    }
    let Some(text) = read(file) else { return };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with("hwcap") {
            continue;
        }
        let Some(pattern) = line.strip_prefix("include") else {
            dirs.push(PathBuf::from(line.trim_start_matches('/')));
            continue;
        };
        let pattern = pattern.trim().trim_start_matches('/');
        let (directory, glob) = match pattern.rsplit_once('/') {
            Some((directory, glob)) => (PathBuf::from(directory), glob.to_owned()),
            None => (PathBuf::new(), pattern.to_owned()),
        };
        let Some(matcher) = sealcraft_glob::Pattern::new(&glob) else {
            continue;
        };
        let mut matched: Vec<PathBuf> = list(&directory)
            .into_iter()
            .filter(|candidate| {
                candidate
                    .file_name()
                    .is_some_and(|name| matcher.matches(&name.to_string_lossy()))
            })
            .collect();
        matched.sort();
        for included in matched {
            conf_file(&included, read, list, seen, dirs);
        }
    }
}

/// The image as the closure sees it: objects by path, and a resolver for symlinks.
pub struct ImageFiles<'a> {
    /// Every ELF object, by its real path (relative to the root).
    pub objects: &'a BTreeMap<PathBuf, ElfInfo>,
    /// Resolves a path inside the image (symlinks followed) to a real file path.
    pub resolve: &'a dyn Fn(&Path) -> Option<PathBuf>,
    /// ld.so.conf directories, then the defaults are appended per class.
    pub conf_dirs: &'a [PathBuf],
}

/// A `DT_NEEDED` entry that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unresolved {
    /// The object that needs it.
    pub object: String,
    /// The library name.
    pub needed: String,
}

fn expand_origin(entry: &str, origin: &Path) -> PathBuf {
    let origin_text = format!("/{}", origin.display());
    let expanded = entry
        .replace("${ORIGIN}", &origin_text)
        .replace("$ORIGIN", &origin_text);
    PathBuf::from(expanded.trim_start_matches('/'))
}

impl ImageFiles<'_> {
    /// Finds `needed` for `object`, with the RPATHs inherited from its loaders.
    fn find(
        &self,
        object: &Path,
        info: &ElfInfo,
        needed: &str,
        inherited_rpath: &[PathBuf],
    ) -> Option<PathBuf> {
        let matches = |candidate: &Path| -> Option<PathBuf> {
            let real = (self.resolve)(candidate)?;
            let found = self.objects.get(&real)?;
            (found.class64 == info.class64 && found.machine == info.machine).then_some(real)
        };
        if needed.contains('/') {
            return matches(&expand_origin(
                needed,
                object.parent().unwrap_or(Path::new("")),
            ));
        }
        let origin = object.parent().unwrap_or(Path::new(""));
        let mut search: Vec<PathBuf> = Vec::new();
        if info.runpath.is_empty() {
            search.extend(info.rpath.iter().map(|entry| expand_origin(entry, origin)));
            search.extend(inherited_rpath.iter().cloned());
        }
        search.extend(
            info.runpath
                .iter()
                .map(|entry| expand_origin(entry, origin)),
        );
        search.extend(self.conf_dirs.iter().cloned());
        search.extend(default_dirs(info.class64));
        search
            .iter()
            .find_map(|directory| matches(&directory.join(needed)))
    }

    /// Every object reachable from `roots`, and the entries that do not resolve.
    pub fn closure(&self, roots: &[PathBuf]) -> (BTreeSet<PathBuf>, Vec<Unresolved>) {
        let mut kept: BTreeSet<PathBuf> = BTreeSet::new();
        let mut unresolved = Vec::new();
        let mut queue: VecDeque<(PathBuf, Vec<PathBuf>)> = roots
            .iter()
            .map(|root| (root.clone(), Vec::new()))
            .collect();
        let mut visited: BTreeSet<(PathBuf, Vec<PathBuf>)> = BTreeSet::new();
        while let Some((object, inherited)) = queue.pop_front() {
            if !visited.insert((object.clone(), inherited.clone())) {
                continue;
            }
            kept.insert(object.clone());
            let Some(info) = self.objects.get(&object) else {
                continue;
            };
            if let Some(interpreter) = &info.interpreter
                && let Some(real) = (self.resolve)(Path::new(interpreter.trim_start_matches('/')))
            {
                kept.insert(real);
            }
            // RPATH applies to the object's own dependencies and, transitively, theirs.
            let mut passed = inherited.clone();
            if info.runpath.is_empty() {
                let origin = object.parent().unwrap_or(Path::new(""));
                passed.extend(info.rpath.iter().map(|entry| expand_origin(entry, origin)));
            }
            for needed in &info.needed {
                match self.find(&object, info, needed, &inherited) {
                    Some(found) => queue.push_back((found, passed.clone())),
                    None => unresolved.push(Unresolved {
                        object: format!("/{}", object.display()),
                        needed: needed.clone(),
                    }),
                }
            }
        }
        unresolved.sort_by(|a, b| (&a.object, &a.needed).cmp(&(&b.object, &b.needed)));
        unresolved.dedup();
        (kept, unresolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(needed: &[&str], rpath: &[&str], runpath: &[&str]) -> ElfInfo {
        ElfInfo {
            class64: true,
            machine: 62,
            executable: false,
            interpreter: None,
            needed: needed.iter().map(|name| (*name).to_owned()).collect(),
            rpath: rpath.iter().map(|entry| (*entry).to_owned()).collect(),
            runpath: runpath.iter().map(|entry| (*entry).to_owned()).collect(),
        }
    }

    #[test]
    fn resolution_follows_the_loader_rules() {
        let mut objects = BTreeMap::new();
        let mut app = object(&["libapp.so", "libc.so.6"], &["$ORIGIN/../lib"], &[]);
        app.executable = true;
        app.interpreter = Some("/lib64/ld-linux-x86-64.so.2".into());
        objects.insert(PathBuf::from("opt/app/bin/app"), app);
        // libapp relies on the executable's RPATH for its own dependency.
        objects.insert(
            PathBuf::from("opt/app/lib/libapp.so"),
            object(&["libhelper.so"], &[], &[]),
        );
        objects.insert(
            PathBuf::from("opt/app/lib/libhelper.so"),
            object(&[], &[], &[]),
        );
        objects.insert(
            PathBuf::from("usr/lib/x86_64-linux-gnu/libc.so.6"),
            object(&[], &[], &[]),
        );
        objects.insert(
            PathBuf::from("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
            object(&[], &[], &[]),
        );
        objects.insert(
            PathBuf::from("usr/lib/x86_64-linux-gnu/libunused.so.1"),
            object(&[], &[], &[]),
        );
        let mut wrong_class = object(&[], &[], &[]);
        wrong_class.class64 = false;
        objects.insert(PathBuf::from("usr/lib/libc32/libc.so.6"), wrong_class);
        // A RUNPATH object does not see inherited RPATHs.
        objects.insert(PathBuf::from("usr/bin/tool"), {
            let mut tool = object(&["libhelper.so"], &[], &["/nowhere"]);
            tool.executable = true;
            tool
        });
        let resolve = |path: &Path| -> Option<PathBuf> {
            let text = path
                .to_string_lossy()
                .replace("lib64/", "usr/lib/x86_64-linux-gnu/");
            let normal: PathBuf =
                PathBuf::from(text)
                    .components()
                    .fold(PathBuf::new(), |mut acc, component| {
                        match component {
                            std::path::Component::ParentDir => {
                                acc.pop();
                            }
                            std::path::Component::Normal(name) => acc.push(name),
                            _ => {}
                        }
                        acc
                    });
            Some(normal)
        };
        let conf = vec![
            PathBuf::from("usr/lib/libc32"),
            PathBuf::from("usr/lib/x86_64-linux-gnu"),
        ];
        let files = ImageFiles {
            objects: &objects,
            resolve: &resolve,
            conf_dirs: &conf,
        };
        let (kept, unresolved) = files.closure(&[
            PathBuf::from("opt/app/bin/app"),
            PathBuf::from("usr/bin/tool"),
        ]);
        for path in [
            "opt/app/lib/libapp.so",
            "opt/app/lib/libhelper.so",
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ] {
            assert!(
                kept.contains(Path::new(path)),
                "{path} should be kept: {kept:?}"
            );
        }
        assert!(!kept.contains(Path::new("usr/lib/x86_64-linux-gnu/libunused.so.1")));
        assert!(!kept.contains(Path::new("usr/lib/libc32/libc.so.6")));
        assert_eq!(
            unresolved,
            [Unresolved {
                object: "/usr/bin/tool".into(),
                needed: "libhelper.so".into()
            }]
        );
    }

    #[test]
    fn ld_so_conf_includes_are_followed() {
        let files: BTreeMap<&str, &str> = BTreeMap::from([
            (
                "etc/ld.so.conf",
                "include /etc/ld.so.conf.d/*.conf\n/opt/first # comment\n",
            ),
            ("etc/ld.so.conf.d/b.conf", "/usr/local/lib\n"),
            (
                "etc/ld.so.conf.d/a.conf",
                "# multiarch\n/usr/lib/x86_64-linux-gnu\n",
            ),
            ("etc/ld.so.conf.d/skip.txt", "/nope\n"),
        ]);
        let read = |path: &Path| {
            files
                .get(path.to_str().unwrap_or(""))
                .map(|text| (*text).to_owned())
        };
        let list = |directory: &Path| -> Vec<PathBuf> {
            files
                .keys()
                .map(PathBuf::from)
                .filter(|path| path.parent() == Some(directory))
                .collect()
        };
        assert_eq!(
            ld_so_conf_dirs(&read, &list),
            ["usr/lib/x86_64-linux-gnu", "usr/local/lib", "opt/first"].map(PathBuf::from)
        );
    }
}
