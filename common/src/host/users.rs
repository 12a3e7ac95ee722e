//! User names for uids and uids for names, for every tool that shows or filters by user, through the system's user database (NSS, so LDAP
//! and systemd's dynamic users work), asked once per distinct uid: a host has thousands of
//! processes but only a handful of users.

use std::collections::HashMap;

use nix::unistd::{Gid, Group, Uid, User};

/// Names looked up so far: of users, and of groups.
#[derive(Debug, Default)]
pub struct Users {
    names: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl Users {
    /// The name of `uid`, or `None` if it has none.
    pub fn name(&mut self, uid: u32) -> Option<&str> {
        self.names
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|user| user.name)
            })
            .as_deref()
    }

    /// The name of the group `gid`, or `None` if it has none.
    pub fn group(&mut self, gid: u32) -> Option<&str> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|group| group.name)
            })
            .as_deref()
    }
}

/// The uid a `--user` value means: a user name, or a number.
pub fn resolve(user: &str) -> Result<u32, String> {
    if let Ok(Some(found)) = User::from_name(user) {
        return Ok(found.uid.as_raw());
    }
    user.parse()
        .map_err(|_| format!("--user '{user}': no such user"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_both_ways() {
        assert_eq!(resolve("root"), Ok(0));
        assert_eq!(resolve("0"), Ok(0));
        assert_eq!(resolve("4000000000"), Ok(4_000_000_000));
        assert!(resolve("no-such-user-here").is_err());
        let mut users = Users::default();
        assert_eq!(users.name(0), Some("root"));
        assert_eq!(users.name(4_000_000_000), None);
        assert_eq!(users.group(0), Some("root"));
        assert_eq!(users.group(4_000_000_000), None);
    }
}
