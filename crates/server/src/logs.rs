//! `logs`: a server's console output (the rotated file, then the current one), and
//! following it as it grows and rotates.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::home::Server;

/// Why the log could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the log")]
    Write(#[source] std::io::Error),
}

fn old_log(server: &Server) -> PathBuf {
    server.console_log().with_extension("log.1")
}

/// Copies the whole log (`console.log.1` then `console.log`) to `out`; returns the offset
/// reached in `console.log`.
pub fn copy_all(server: &Server, out: &mut dyn Write) -> Result<u64, LogError> {
    copy_from(&old_log(server), 0, out)?;
    copy_from(&server.console_log(), 0, out)
}

/// Copies `path` from `offset` to its end; a missing file is empty. Returns the new offset.
fn copy_from(path: &Path, offset: u64, out: &mut dyn Write) -> Result<u64, LogError> {
    let read_err = |source| LogError::Read {
        path: path.into(),
        source,
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(read_err(e)),
    };
    f.seek(SeekFrom::Start(offset)).map_err(read_err)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(read_err)?;
    out.write_all(&buf).map_err(LogError::Write)?;
    out.flush().map_err(LogError::Write)?;
    Ok(offset + buf.len() as u64)
}

/// Prints the log, then what is appended, until `keep_going` returns false. A rotation
/// (the file shrank) is followed: the rest of the old file first, then the new one.
pub fn follow(
    server: &Server,
    out: &mut dyn Write,
    keep_going: &dyn Fn() -> bool,
) -> Result<(), LogError> {
    let log = server.console_log();
    let mut pos = copy_all(server, out)?;
    while keep_going() {
        std::thread::sleep(Duration::from_millis(200));
        let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            copy_from(&old_log(server), pos, out)?;
            pos = 0;
        }
        if len > pos {
            pos = copy_from(&log, pos, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::testutil::TempDir;

    #[test]
    fn old_file_comes_first() {
        let t = TempDir::new("logs");
        let s = Server {
            name: "s".into(),
            dir: t.path().into(),
            config: ServerConfig::new(40000),
        };
        let mut out = Vec::new();
        assert_eq!(copy_all(&s, &mut out).unwrap(), 0);
        std::fs::write(t.path().join("console.log.1"), "old\n").unwrap();
        std::fs::write(t.path().join("console.log"), "new\n").unwrap();
        copy_all(&s, &mut out).unwrap();
        assert_eq!(out, b"old\nnew\n");
    }
}
