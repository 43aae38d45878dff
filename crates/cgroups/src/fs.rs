//! Small file helpers for cgroupfs: one open and one read or write per call, errors that name the file.
//!
//! cgroupfs files must be written with a single `write(2)` (the kernel parses each write as one
//! command) and must never be created, so the helpers open without `O_CREAT`/`O_TRUNC`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::Error;

/// Reads a whole cgroup file. Avoids `fs::read_to_string`, which also `statx`es for a size hint
/// that cgroupfs does not provide anyway.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    let err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(err)?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        }
    }
    String::from_utf8(buf).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads a cgroup file, `Ok(None)` if it does not exist (a controller file that this kernel lacks).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, Error> {
    match read(path) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `value` to the cgroup file `dir/name` in one `write(2)`.
pub(crate) fn write(dir: &Path, name: &str, value: &str) -> Result<(), Error> {
    write_path(&dir.join(name), value)
}

/// Writes `value` to an existing cgroup file in one `write(2)`.
pub(crate) fn write_path(path: &Path, value: &str) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut file = OpenOptions::new().write(true).open(path).map_err(err)?;
    let n = file.write(value.as_bytes()).map_err(err)?;
    if n != value.len() {
        return Err(err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to a cgroup file",
        )));
    }
    Ok(())
}

/// Parses a single integer file such as `pids.current`; "max" reads as `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, Error> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        reason: format!("expected an integer, found {t:?}"),
    })
}

/// Reads and parses a single integer file.
pub(crate) fn read_u64(path: &Path) -> Result<u64, Error> {
    parse_u64(path, &read(path)?)
}

/// Reads a single integer file, `Ok(None)` if the kernel does not provide it.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>, Error> {
    read_opt(path)?.map(|t| parse_u64(path, &t)).transpose()
}

/// Looks up `key` in a flat keyed file ("key value" per line: `memory.stat`, `cpu.stat`, ...).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}
