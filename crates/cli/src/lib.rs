//! Shared pieces of the two front ends: logging and error reporting.
//!
//! Only this crate prints. Libraries return errors and emit `log` records; the
//! logger here writes them as text or as JSON lines (`level`, `msg`, `time`),
//! which is what containerd's shim reads back from `--log`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub mod oci;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

struct Logger {
    file: Option<Mutex<std::fs::File>>,
    format: LogFormat,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format_line(self.format, r.level(), &r.args().to_string());
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// One log line, newline-terminated.
pub fn format_line(format: LogFormat, level: log::Level, msg: &str) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let level = if level == "warn" {
        "warning".to_owned()
    } else {
        level
    };
    match format {
        LogFormat::Text => format!("{} {level}: {msg}\n", jaula_runtime::store::rfc3339_now()),
        LogFormat::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": jaula_runtime::store::rfc3339_now()});
            format!("{v}\n")
        }
    }
}

/// Installs the logger: to `file` if given, else stderr; debug level with `debug`.
pub fn init_logging(file: Option<&PathBuf>, format: LogFormat, debug: bool) -> anyhow::Result<()> {
    let file = match file {
        Some(p) => Some(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("open log file {}: {e}", p.display()))?,
        )),
        None => None,
    };
    let to_file = file.is_some();
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    log::set_boxed_logger(Box::new(Logger {
        file,
        format,
        level,
    }))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    log::set_max_level(level);
    LOG_TO_FILE.store(to_file, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

static LOG_TO_FILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reports a fatal error once: in the log (where shims look for it) and on
/// stderr (where people look for it).
pub fn report(err: &anyhow::Error) {
    let msg = format!("{err:#}");
    log::error!("{msg}");
    if LOG_TO_FILE.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_level_msg_time() {
        let l = format_line(
            LogFormat::Json,
            log::Level::Error,
            "container ID does not exist: x",
        );
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container ID does not exist: x");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
