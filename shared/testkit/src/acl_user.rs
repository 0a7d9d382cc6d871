//! [`AclUser`]: a Redis ACL user for a service under test, so that an invariant such as "the
//! gateway writes only its own cache keys and webhook hints" is enforced by Redis itself: a
//! command outside the user's rules fails with `NOPERM`, and so does the test.
//!
//! The user is declared on the `redis-server` command line ([`AclUser::server_args`]), not with
//! `ACL SETUSER`, so it exists again after [`crate::RedisServer::restart`]. The test's own
//! setup keeps writing as the default user.

/// A Redis ACL user: the commands it may run and the keys it may read or write.
#[derive(Debug, Clone)]
pub struct AclUser {
    name: String,
    password: String,
    commands: Vec<String>,
    read_keys: Vec<String>,
    write_keys: Vec<String>,
    channels: Vec<String>,
}

impl AclUser {
    /// A user that may run only `commands` (ACL rules such as `+@read`, `+ping`, `+xadd`) on
    /// keys matching `read_keys` (read access only) or `write_keys` (read and write access).
    /// Key patterns are Redis glob patterns; channels are closed unless [`AclUser::with_channels`]
    /// opens some.
    pub fn new(name: &str, commands: &[&str], read_keys: &[&str], write_keys: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
        Self {
            name: name.to_owned(),
            password: format!("{name}-test-password"),
            commands: owned(commands),
            read_keys: owned(read_keys),
            write_keys: owned(write_keys),
            channels: Vec::new(),
        }
    }

    /// The same user, also allowed the pub/sub channels matching `patterns` (glob patterns).
    pub fn with_channels(mut self, patterns: &[&str]) -> Self {
        self.channels = patterns.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `redis-server` arguments declaring the user (`--user name on >password ...`).
    pub fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            "--user".to_owned(),
            self.name.clone(),
            "on".to_owned(),
            format!(">{}", self.password),
            "resetkeys".to_owned(),
            "resetchannels".to_owned(),
            "-@all".to_owned(),
        ];
        args.extend(self.read_keys.iter().map(|pattern| format!("%R~{pattern}")));
        args.extend(self.write_keys.iter().map(|pattern| format!("~{pattern}")));
        args.extend(self.channels.iter().map(|pattern| format!("&{pattern}")));
        args.extend(self.commands.iter().cloned());
        args
    }

    /// `redis://name:password@127.0.0.1:{port}`: the `REDIS_URL` a service connects with as
    /// this user.
    pub fn url(&self, port: u16) -> String {
        format!("redis://{}:{}@127.0.0.1:{port}", self.name, self.password)
    }
}
