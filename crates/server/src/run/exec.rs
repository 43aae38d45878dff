//! `exec` and `enter`: a process inside a running server, as one of its users.

use std::path::PathBuf;

use jaula_runtime::ExecOptions;
use jaula_spec::{Capabilities, ConsoleSize, Process, User};

use super::{Manager, RunError, RunState};
use crate::home::Server;
use crate::passwd::{self, Account};

/// One `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    /// A user name or uid of the server's `/etc/passwd` (default root).
    pub user: Option<String>,
    /// Working directory (default `/`).
    pub cwd: Option<PathBuf>,
    /// `K=V` pairs, added after (so overriding) the defaults.
    pub env: Vec<String>,
    /// Run on a new pseudo-terminal.
    pub tty: bool,
    /// Terminal size (rows, columns) when `tty`.
    pub size: Option<(u16, u16)>,
}

impl Manager {
    /// Runs `req` in server `name` and returns its exit code.
    pub fn exec(&self, name: &str, req: &ExecRequest) -> Result<i32, RunError> {
        let server = self.home.open(name)?;
        if self.state(name)? != RunState::Running {
            return Err(RunError::NotRunning { name: name.into() });
        }
        let acct = passwd::lookup(&server.rootfs(), req.user.as_deref().unwrap_or("root"))?;
        let process = process(&server, &acct, req);
        self.runtime
            .exec(
                name,
                ExecOptions {
                    process,
                    ..ExecOptions::default()
                },
            )
            .map_err(RunError::runtime(name))
    }

    /// Opens a login shell (the user's shell from the server's `/etc/passwd`) on a pty.
    pub fn enter(
        &self,
        name: &str,
        user: Option<&str>,
        env: Vec<String>,
        size: Option<(u16, u16)>,
    ) -> Result<i32, RunError> {
        let server = self.home.open(name)?;
        let acct = passwd::lookup(&server.rootfs(), user.unwrap_or("root"))?;
        let req = ExecRequest {
            args: vec![acct.shell.clone(), "-l".into()],
            user: Some(acct.uid.to_string()),
            cwd: Some(PathBuf::from(&acct.home)),
            env,
            tty: true,
            size,
        };
        self.exec(name, &req)
    }
}

/// The OCI process for `req`: the server's capability bound, the account's ids and home.
fn process(server: &Server, acct: &Account, req: &ExecRequest) -> Process {
    let caps = crate::spec::capabilities(&server.config);
    let mut env = vec![
        crate::spec::PATH.to_string(),
        format!("HOME={}", acct.home),
        format!("USER={}", acct.name),
        format!("LOGNAME={}", acct.name),
        format!("SHELL={}", acct.shell),
    ];
    env.extend(req.env.iter().cloned());
    Process {
        terminal: req.tty,
        console_size: req.size.filter(|_| req.tty).map(|(h, w)| ConsoleSize {
            height: u32::from(h),
            width: u32::from(w),
        }),
        user: User {
            uid: acct.uid,
            gid: acct.gid,
            additional_gids: acct.groups.clone(),
            ..User::default()
        },
        args: req.args.clone(),
        env,
        cwd: req.cwd.clone().unwrap_or_else(|| PathBuf::from("/")),
        capabilities: Some(Capabilities {
            bounding: Some(caps.clone()),
            effective: Some(caps.clone()),
            permitted: Some(caps),
            inheritable: Some(Vec::new()),
            ambient: None,
        }),
        ..Process::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    #[test]
    fn process_uses_the_account_and_overrides_env() {
        let server = Server {
            name: "s".into(),
            dir: "/x".into(),
            config: ServerConfig::new(40000),
        };
        let acct = Account {
            name: "bob".into(),
            uid: 1000,
            gid: 100,
            home: "/home/bob".into(),
            shell: "/bin/sh".into(),
            groups: vec![4],
        };
        let req = ExecRequest {
            args: vec!["id".into()],
            env: vec!["HOME=/tmp".into()],
            ..ExecRequest::default()
        };
        let p = process(&server, &acct, &req);
        assert_eq!(
            (p.user.uid, p.user.gid, p.user.additional_gids.clone()),
            (1000, 100, vec![4])
        );
        assert_eq!(p.env.last().unwrap(), "HOME=/tmp");
        assert_eq!(p.cwd, PathBuf::from("/"));
        assert!(!p.terminal);
    }
}
