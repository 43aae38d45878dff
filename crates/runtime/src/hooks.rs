//! OCI hooks: each gets the state on stdin and must finish within its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jaula_spec::Hook;

use crate::error::{Error, Result};

/// Runs hooks in order; the first failure stops the sequence.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<()> {
    hooks.iter().try_for_each(|h| run_one(kind, h, state))
}

/// Runs every hook even if some fail, returning the failures (poststart and
/// poststop failures are only warnings).
pub fn run_all_lenient(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Vec<Error> {
    hooks
        .iter()
        .filter_map(|h| run_one(kind, h, state).err())
        .collect()
}

fn run_one(kind: &'static str, h: &Hook, state: &[u8]) -> Result<()> {
    let err = |reason: String| Error::Hook {
        kind,
        path: h.path.clone(),
        reason,
    };
    let mut cmd = Command::new(&h.path);
    if let Some((arg0, rest)) = h.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in &h.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| err(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores stdin may close it early; that is not an error.
        let _ = stdin.write_all(state);
    }
    let deadline = h
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut nap = Duration::from_micros(200);
    loop {
        match child.try_wait().map_err(|e| err(format!("wait: {e}")))? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => return Err(err(format!("exited with {st}"))),
            None => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(format!("timed out after {}s", h.timeout.unwrap_or(0))));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["X=1".into()],
            timeout,
        }
    }

    #[test]
    fn hook_gets_state_and_env() {
        let out = std::env::temp_dir().join(format!("jaula-hook-{}", std::process::id()));
        let h = hook(
            &format!("cat > {} && echo $X >> {}", out.display(), out.display()),
            None,
        );
        run_all("prestart", &[h], b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}1\n");
        std::fs::remove_file(out).unwrap();
    }

    #[test]
    fn failing_and_slow_hooks() {
        assert!(run_all("prestart", &[hook("exit 3", None)], b"")
            .unwrap_err()
            .to_string()
            .contains("exit"));
        let e = run_all("prestart", &[hook("sleep 5", Some(1))], b"").unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        assert_eq!(
            run_all_lenient("poststop", &[hook("exit 1", None), hook("true", None)], b"").len(),
            1
        );
    }
}
