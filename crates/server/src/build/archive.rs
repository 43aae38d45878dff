//! The `tar` method: unpacking a root filesystem archive, plain or compressed with gzip, xz or
//! zstd. The compression is recognized from the content, not the file name.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{BuildError, Cancel, Progress};

/// The compression of an archive, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// Recognizes the compression from the magic numbers of each format.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Unpacks `source` into `rootfs`, keeping owners, modes, times and xattrs.
pub fn unpack(
    source: &Path,
    rootfs: &Path,
    progress: &mut dyn Progress,
    cancel: &Cancel,
) -> Result<(), BuildError> {
    let archive_err = |source_err| BuildError::Archive {
        path: source.into(),
        source: source_err,
    };
    let mut head = [0u8; 6];
    let n = File::open(source)
        .and_then(|mut f| f.read(&mut head))
        .map_err(archive_err)?;
    let file = BufReader::new(File::open(source).map_err(archive_err)?);
    match sniff(&head[..n]) {
        Compression::None => unpack_tar(file, rootfs, progress, cancel),
        Compression::Gzip => unpack_tar(
            flate2::read::MultiGzDecoder::new(file),
            rootfs,
            progress,
            cancel,
        ),
        Compression::Zstd => {
            let dec = ruzstd::StreamingDecoder::new(file)
                .map_err(|e| archive_err(std::io::Error::other(e.to_string())))?;
            unpack_tar(dec, rootfs, progress, cancel)
        }
        Compression::Xz => unpack_xz(file, rootfs, progress, cancel),
    }
    .map_err(|e| match e {
        BuildError::Io { source: err, .. } => archive_err(err),
        other => other,
    })
}

/// lzma-rs decodes into a writer, not a reader: it runs on a thread feeding a pipe.
fn unpack_xz(
    file: BufReader<File>,
    rootfs: &Path,
    progress: &mut dyn Progress,
    cancel: &Cancel,
) -> Result<(), BuildError> {
    let io_err = BuildError::io("cannot unpack into", rootfs);
    let (reader, mut writer) = std::io::pipe().map_err(io_err)?;
    let decoder = std::thread::spawn(move || {
        let mut input = file;
        lzma_rs::xz_decompress(&mut input, &mut writer).map_err(|e| e.to_string())
    });
    let result = unpack_tar(reader, rootfs, progress, cancel);
    // The reader is gone now, so a decoder still writing gets EPIPE and ends.
    let decoded = decoder
        .join()
        .unwrap_or_else(|_| Err("xz decoder panicked".into()));
    result?;
    decoded.map_err(|m| BuildError::Io {
        op: "cannot decompress xz into",
        path: rootfs.into(),
        source: std::io::Error::other(m),
    })
}

fn unpack_tar<R: Read>(
    reader: R,
    rootfs: &Path,
    progress: &mut dyn Progress,
    cancel: &Cancel,
) -> Result<(), BuildError> {
    let io_err = |e| BuildError::Io {
        op: "cannot unpack into",
        path: rootfs.into(),
        source: e,
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let mut count = 0u64;
    for entry in archive.entries().map_err(io_err)? {
        cancel.check()?;
        let mut entry = entry.map_err(io_err)?;
        // unpack_in refuses entries that would land outside rootfs ("..", absolute links).
        entry.unpack_in(rootfs).map_err(io_err)?;
        count += 1;
        if count.is_multiple_of(500) {
            progress.step(count, None, "");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::NoProgress;
    use crate::testutil::TempDir;

    fn make_tar(dir: &Path) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        let data = b"hello\n";
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_uid(u64::from(nix::unistd::getuid().as_raw()));
        h.set_gid(u64::from(nix::unistd::getgid().as_raw()));
        h.set_cksum();
        b.append_data(&mut h, "etc/motd", &data[..]).unwrap();
        let _ = dir;
        b.into_inner().unwrap()
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(sniff(b"\xfd7zXZ\x00"), Compression::Xz);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(sniff(b"etc/"), Compression::None);
    }

    #[test]
    fn unpacks_plain_gzip_and_xz() {
        let t = TempDir::new("tar");
        let raw = make_tar(t.path());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &raw[..], &mut xz).unwrap();
        for (name, bytes) in [("a.tar", raw.clone()), ("a.tar.gz", gz), ("a.tar.xz", xz)] {
            let src = t.path().join(name);
            std::fs::write(&src, bytes).unwrap();
            let dst = t.path().join(format!("out-{name}"));
            std::fs::create_dir(&dst).unwrap();
            unpack(&src, &dst, &mut NoProgress, &Cancel::default()).unwrap();
            assert_eq!(
                std::fs::read_to_string(dst.join("etc/motd")).unwrap(),
                "hello\n",
                "{name}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let t = TempDir::new("tar-bad");
        let src = t.path().join("bad.tar.gz");
        std::fs::write(&src, [0x1f, 0x8b, 0, 0, 1, 2, 3]).unwrap();
        let e = unpack(&src, t.path(), &mut NoProgress, &Cancel::default()).unwrap_err();
        assert!(e.to_string().contains("bad.tar.gz"), "{e}");
    }
}
