//! The state of a stage while it is built: its config, layers, history,
//! shell and ARGs.

use sealcraft_dockerfile::Vars;
use sealcraft_oci::digest::sha256_of;
use sealcraft_oci::manifest::{HistoryEntry, ImageConfig};

use crate::bases::BaseImage;
use crate::cache::LayerRef;

/// The state of a stage as it is built (and of a finished stage).
#[derive(Debug, Clone)]
pub(crate) struct Working {
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRef>,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) shell: Vec<String>,
    pub(crate) args: Vars,
    pub(crate) cmd_set: bool,
    pub(crate) base: Option<(String, String)>,
    /// The line of the last USER instruction, for messages about the user.
    pub(crate) user_line: Option<usize>,
}

impl Working {
    pub(crate) fn from_image(base: &BaseImage) -> Self {
        let shell = base
            .image
            .config
            .runtime_config_json()
            .and_then(|config| config.get("Shell"))
            .and_then(|shell| serde_json::from_value::<Vec<String>>(shell.clone()).ok())
            .filter(|shell| !shell.is_empty())
            .unwrap_or_else(default_shell);
        Self {
            history: base.image.config.history(),
            config: base.image.config.clone(),
            layers: base.layers.clone(),
            shell,
            args: Vars::new(),
            cmd_set: false,
            base: Some((base.record.source.clone(), base.record.digest.clone())),
            user_line: None,
        }
    }

    pub(crate) fn scratch(architecture: &str) -> Self {
        Self {
            config: ImageConfig::new(architecture, "linux"),
            layers: Vec::new(),
            history: Vec::new(),
            shell: default_shell(),
            args: Vars::new(),
            cmd_set: false,
            base: None,
            user_line: None,
        }
    }

    /// Stage ARGs overlaid with the config's ENV (ENV wins, as in Docker).
    pub(crate) fn vars(&self) -> Vars {
        let mut vars = self.args.clone();
        for assignment in self.config.runtime_config().env.unwrap_or_default() {
            if let Some((key, value)) = assignment.split_once('=') {
                vars.insert(key.to_owned(), value.to_owned());
            }
        }
        vars
    }

    /// `path` as an absolute image path: relative ones are under WORKDIR (a trailing `/` is kept).
    pub(crate) fn in_workdir(&self, path: &str) -> String {
        if path.starts_with('/') {
            return path.to_owned();
        }
        let workdir = self
            .config
            .runtime_config()
            .working_dir
            .unwrap_or_else(|| "/".into());
        format!("{}/{path}", workdir.trim_end_matches('/'))
    }

    /// The OCI chain ID of the layers, or `scratch`.
    pub(crate) fn chain(&self) -> String {
        chain_id(&self.layers)
    }
}

pub(crate) fn chain_id(layers: &[LayerRef]) -> String {
    let mut chain: Option<String> = None;
    for layer in layers {
        chain = Some(match chain {
            None => layer.diff_id.to_string(),
            Some(previous) => {
                sha256_of(format!("{previous} {}", layer.diff_id).as_bytes()).to_string()
            }
        });
    }
    chain.unwrap_or_else(|| "scratch".to_owned())
}

pub(crate) fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcraft_oci::manifest::Descriptor;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let layer = |text: &str| LayerRef {
            descriptor: Descriptor::new("x", sha256_of(text.as_bytes()), 1),
            diff_id: sha256_of(text.as_bytes()),
        };
        assert_eq!(chain_id(&[]), "scratch");
        let one = layer("a");
        assert_eq!(
            chain_id(std::slice::from_ref(&one)),
            one.diff_id.to_string()
        );
        let two = layer("b");
        let expected = sha256_of(format!("{} {}", one.diff_id, two.diff_id).as_bytes()).to_string();
        assert_eq!(chain_id(&[one, two]), expected);
    }
}
