//! The users and groups of a root filesystem, from its own `/etc/passwd`
//! and `/etc/group`: what a `USER`, `--chown` or config user resolves to,
//! and whether an image would run as root. The texts come from the caller
//! (a merged view, a mounted tree), so this reads nothing itself.

/// A user or group that is not in the image's databases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// No such user.
    #[error("user {name:?} is not in the image's /etc/passwd")]
    UnknownUser {
        /// The name asked for.
        name: String,
    },
    /// No such group.
    #[error("group {name:?} is not in the image's /etc/group")]
    UnknownGroup {
        /// The name asked for.
        name: String,
    },
}

/// Why an image's user is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootUserError {
    /// The user is root, by name, id or alias.
    #[error(
        "the image user {user:?} resolves to uid 0 through the image's /etc/passwd; images must run as a non-root user"
    )]
    Root {
        /// The configured user.
        user: String,
    },
    /// The user cannot be resolved.
    #[error(
        "the image user {user:?} is not in the image's /etc/passwd; create it first (useradd in a RUN step, [user] in sealcraft.toml) or give a numeric uid"
    )]
    Unknown {
        /// The configured user.
        user: String,
    },
}

/// What a `user[:group]` runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (only when no group was named, as Docker does).
    pub groups: Vec<u32>,
    /// Home directory (`/root` for uid 0 without one).
    pub home: String,
}

/// The parsed passwd and group databases.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    passwd: Vec<Vec<String>>,
    group: Vec<Vec<String>>,
}

fn entries(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_owned).collect())
        .collect()
}

fn id_field(fields: &[String], index: usize) -> Option<u32> {
    fields.get(index).and_then(|id| id.parse().ok())
}

fn numeric(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|ch| ch.is_ascii_digit())
}

impl Accounts {
    /// Parses the two databases' texts (either may be empty).
    pub fn parse(passwd: &str, group: &str) -> Self {
        Self {
            passwd: entries(passwd),
            group: entries(group),
        }
    }

    fn user_entry(&self, name: &str) -> Option<&Vec<String>> {
        self.passwd.iter().find(|fields| {
            fields.first().map(String::as_str) == Some(name)
                || (numeric(name) && fields.get(2).map(String::as_str) == Some(name))
        })
    }

    fn group_id(&self, group: &str) -> Result<u32, AccountError> {
        match group.parse::<u32>() {
            Ok(gid) => Ok(gid),
            Err(_) => self
                .group
                .iter()
                .find(|fields| fields.first().map(String::as_str) == Some(group))
                .and_then(|fields| id_field(fields, 2))
                .ok_or_else(|| AccountError::UnknownGroup {
                    name: group.to_owned(),
                }),
        }
    }

    /// `user[:group]` as a RUN step or a container runs it.
    pub fn resolve_user(&self, user: &str) -> Result<ResolvedUser, AccountError> {
        let (name, group) = match user.split_once(':') {
            Some((name, group)) => (name, Some(group)),
            None => (user, None),
        };
        let (uid, primary, login, home) = match (name.parse::<u32>(), self.user_entry(name)) {
            (_, Some(fields)) => (
                id_field(fields, 2).unwrap_or(0),
                id_field(fields, 3).unwrap_or(0),
                fields.first().cloned().unwrap_or_default(),
                fields
                    .get(5)
                    .cloned()
                    .filter(|home| !home.is_empty())
                    .unwrap_or_else(|| "/".into()),
            ),
            (Ok(uid), None) => (uid, 0, String::new(), "/".into()),
            (Err(_), None) => {
                return Err(AccountError::UnknownUser {
                    name: name.to_owned(),
                });
            }
        };
        let gid = match group {
            Some(group) => self.group_id(group)?,
            None => primary,
        };
        let groups = if group.is_none() && !login.is_empty() {
            self.group
                .iter()
                .filter(|fields| {
                    fields
                        .get(3)
                        .is_some_and(|members| members.split(',').any(|member| member == login))
                })
                .filter_map(|fields| id_field(fields, 2))
                .filter(|id| *id != gid)
                .collect()
        } else {
            Vec::new()
        };
        let home = if uid == 0 && home == "/" {
            "/root".into()
        } else {
            home
        };
        Ok(ResolvedUser {
            uid,
            gid,
            groups,
            home,
        })
    }

    /// `user[:group]` as `--chown` means it: a bare user also names its group id.
    pub fn resolve_owner(&self, owner: &str) -> Result<(u32, u32), AccountError> {
        let (user, group) = match owner.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (owner, None),
        };
        let uid = match user.parse::<u32>() {
            Ok(uid) => uid,
            Err(_) => self
                .passwd
                .iter()
                .find(|fields| fields.first().map(String::as_str) == Some(user))
                .and_then(|fields| id_field(fields, 2))
                .ok_or_else(|| AccountError::UnknownUser {
                    name: user.to_owned(),
                })?,
        };
        let gid = match group {
            None => uid,
            Some(group) => self.group_id(group)?,
        };
        Ok((uid, gid))
    }

    /// Fails unless `user` (an image config's `User`) resolves to a non-zero uid.
    pub fn check_non_root(&self, user: Option<&str>) -> Result<u32, RootUserError> {
        let user = user.unwrap_or("");
        let name = user.split(':').next().unwrap_or("");
        if name.is_empty() {
            return Err(RootUserError::Root {
                user: user.to_owned(),
            });
        }
        let uid = match name.parse::<u32>() {
            Ok(uid) => uid,
            Err(_) => self
                .passwd
                .iter()
                .find(|fields| fields.first().map(String::as_str) == Some(name))
                .and_then(|fields| id_field(fields, 2))
                .ok_or_else(|| RootUserError::Unknown {
                    user: user.to_owned(),
                })?,
        };
        if uid == 0 {
            return Err(RootUserError::Root {
                user: user.to_owned(),
            });
        }
        Ok(uid)
    }
}

/// Whether `user` names a uid directly, so no database is needed to check it.
pub fn is_numeric_user(user: Option<&str>) -> bool {
    user.and_then(|user| user.split(':').next())
        .is_some_and(numeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::parse(
            "root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001::/home/app:/bin/false\n",
            "root:x:0:\napp:x:10001:\nextra:x:20:app\n",
        )
    }

    fn user(uid: u32, gid: u32, groups: Vec<u32>, home: &str) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            groups,
            home: home.into(),
        }
    }

    #[test]
    fn users_resolve_through_the_image_databases() {
        let accounts = accounts();
        assert_eq!(
            accounts.resolve_user("app").unwrap(),
            user(10001, 10001, vec![20], "/home/app")
        );
        assert_eq!(
            accounts.resolve_user("app:root").unwrap(),
            user(10001, 0, vec![], "/home/app")
        );
        assert_eq!(
            accounts.resolve_user("root").unwrap(),
            user(0, 0, vec![], "/root")
        );
        assert_eq!(
            accounts.resolve_user("4242").unwrap(),
            user(4242, 0, vec![], "/")
        );
        assert_eq!(
            accounts.resolve_user("ghost").unwrap_err(),
            AccountError::UnknownUser {
                name: "ghost".into()
            }
        );
        assert_eq!(accounts.resolve_owner("app").unwrap(), (10001, 10001));
        assert_eq!(accounts.resolve_owner("app:extra").unwrap(), (10001, 20));
        assert_eq!(accounts.resolve_owner("7:8").unwrap(), (7, 8));
        assert!(matches!(
            accounts.resolve_owner("app:nogroup"),
            Err(AccountError::UnknownGroup { .. })
        ));
    }

    #[test]
    fn root_users_are_refused() {
        let accounts = Accounts::parse(
            "root:x:0:0::/root:/bin/sh\napp:x:10001:10001::/:/bin/sh\nalias:x:0:0::/:/bin/sh\n",
            "",
        );
        assert_eq!(accounts.check_non_root(Some("app")), Ok(10001));
        assert_eq!(accounts.check_non_root(Some("10001:10001")), Ok(10001));
        for user in [
            None,
            Some(""),
            Some("root"),
            Some("0"),
            Some("0:0"),
            Some("alias"),
        ] {
            assert!(accounts.check_non_root(user).is_err(), "{user:?}");
        }
        assert!(matches!(
            accounts.check_non_root(Some("nobody-here")),
            Err(RootUserError::Unknown { .. })
        ));
        assert!(is_numeric_user(Some("10001:10")) && !is_numeric_user(Some("app")));
    }
}
