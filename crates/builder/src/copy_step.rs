//! COPY and ADD as steps: sources from the context, an earlier stage or an
//! image (mounted read-only), fingerprinted for the cache key, then
//! written into the stage with their owner and mode.

use std::fs;
use std::path::Path;

use sealcraft_dockerfile::{CopySource, Instruction, words};
use sealcraft_oci::unpack::{UnpackOptions, unpack_layer};
use sha2::{Digest as _, Sha256};

use crate::cache_key::cache_key;
use crate::copy::{self, Chmod, CopyError, Ownership};
use crate::rootfs::Root;
use crate::stage::Builder;
use crate::working::Working;
use crate::{Error, Result};

impl Builder<'_> {
    pub(crate) fn copy_step(
        &mut self,
        working: &mut Working,
        label: &str,
        stage_index: usize,
        instruction: &Instruction,
        copy: &sealcraft_dockerfile::Copy,
        add: bool,
    ) -> Result<()> {
        let line = instruction.line;
        let keyword: &'static str = if add { "ADD" } else { "COPY" };
        let vars = working.vars();
        let escape = self.spec.dockerfile.escape;
        let fail =
            |builder: &Self, error: CopyError| builder.at(line, Error::Copy { keyword, error });
        let word = |builder: &Self, error| builder.word_error(line, keyword, error);
        // Where sources come from: the context, an earlier stage, or an image.
        let (source_mount, source_identity) = match &copy.from {
            None => (None, "context".to_owned()),
            Some(raw) => {
                let from = self.frontend.expand_meta(raw, line, keyword)?;
                let layers = match self.frontend.stage_ref(&from, stage_index, line)? {
                    Some(dependency) => self.results[dependency]
                        .as_ref()
                        .map(|stage| stage.layers.clone())
                        .unwrap_or_default(),
                    None => self.resolve_external(&from, line)?.layers,
                };
                // The fingerprint below hashes every file taken from it, so the
                // key needs only the kind of source, not which layers held them.
                let identity = "another root".to_owned();
                (
                    Some(
                        self.mount_read_only(&layers)
                            .map_err(|error| self.at(line, error))?,
                    ),
                    identity,
                )
            }
        };
        let source_root = match &source_mount {
            Some(mount) => Some(Root::open(mount.path()).map_err(|source| {
                fail(
                    self,
                    CopyError::Io {
                        path: mount.path().to_path_buf(),
                        source,
                    },
                )
            })?),
            None => None,
        };
        let root_for_sources = source_root.as_ref().unwrap_or(&self.context);
        let ignore = source_root.is_none().then_some(&self.ignore);
        let mut trees = Vec::new();
        let mut shown_sources = Vec::new();
        let mut path_sources = Vec::new();
        for source in &copy.sources {
            match source {
                CopySource::Path(raw) => {
                    let expanded = words::expand_word(raw, &vars, escape)
                        .map_err(|error| word(self, error))?;
                    shown_sources.push(expanded.clone());
                    path_sources.push(expanded);
                }
                CopySource::Inline {
                    name,
                    content,
                    expand,
                } => {
                    let content = if *expand {
                        words::expand_text(content, &vars, escape)
                            .map_err(|error| word(self, error))?
                    } else {
                        content.clone()
                    };
                    shown_sources.push(format!("<<{name}"));
                    trees.push(copy::inline(
                        name,
                        content.as_bytes(),
                        self.spec.source_date_epoch,
                    ));
                }
            }
        }
        let mut collected = copy::collect(
            root_for_sources,
            &path_sources,
            ignore,
            add && copy.from.is_none(),
        )
        .map_err(|error| fail(self, error))?;
        collected.append(&mut trees);
        let trees = collected;
        let destination_raw = words::expand_word(&copy.destination, &vars, escape)
            .map_err(|error| word(self, error))?;
        let destination = working.in_workdir(&destination_raw);
        let chown = match &copy.chown {
            Some(raw) => {
                Some(words::expand_word(raw, &vars, escape).map_err(|error| word(self, error))?)
            }
            None => None,
        };
        let chmod = match &copy.chmod {
            Some(raw) => {
                let text =
                    words::expand_word(raw, &vars, escape).map_err(|error| word(self, error))?;
                Some(Chmod::parse(&text).map_err(|error| fail(self, error.into()))?)
            }
            None => None,
        };
        let mut fingerprint = Sha256::new();
        copy::fingerprint(&trees, self.spec.source_date_epoch, &mut fingerprint)
            .map_err(|source| fail(self, CopyError::Fingerprint { source }))?;
        let fingerprint = hex::encode(fingerprint.finalize());
        let key = cache_key(
            &working.chain(),
            &[
                keyword,
                &source_identity,
                &fingerprint,
                &destination,
                chown.as_deref().unwrap_or(""),
                copy.chmod.as_deref().unwrap_or(""),
            ],
        );
        let mut flags = String::new();
        if let Some(from) = &copy.from {
            flags.push_str(&format!("--from={from} "));
        }
        if let Some(chown) = &chown {
            flags.push_str(&format!("--chown={chown} "));
        }
        if let Some(chmod) = &copy.chmod {
            flags.push_str(&format!("--chmod={chmod} "));
        }
        let created_by = format!("{keyword} {flags}{} {destination}", shown_sources.join(" "));
        let result = self.layer_step(
            working,
            label,
            instruction,
            created_by,
            key,
            &mut |_builder, root| {
                let (uid, gid) = match &chown {
                    Some(chown) => {
                        crate::users::accounts(root)
                            .resolve_owner(chown)
                            .map_err(|error| Error::Account {
                                keyword: "--chown",
                                error,
                            })?
                    }
                    None => (0, 0),
                };
                let ownership = Ownership {
                    uid,
                    gid,
                    chmod: chmod.as_ref(),
                };
                let extract =
                    |archive: &Path, target: &Path| -> std::result::Result<(), CopyError> {
                        let file = fs::File::open(archive).map_err(|source| CopyError::Io {
                            path: archive.to_path_buf(),
                            source,
                        })?;
                        let options = UnpackOptions {
                            preserve_owners: true,
                            ..UnpackOptions::default()
                        };
                        unpack_layer(file, &archive.display().to_string(), target, &options)
                            .map(|_| ())
                            .map_err(|source| CopyError::Extract {
                                archive: archive.to_path_buf(),
                                source: Box::new(source),
                            })
                    };
                copy::apply(&trees, root, &destination, &ownership, &extract)
                    .map_err(|error| Error::Copy { keyword, error })?;
                Ok(Vec::new())
            },
        );
        drop(source_root);
        if let Some(mount) = source_mount {
            let _ = mount.unmount();
        }
        result
    }
}
