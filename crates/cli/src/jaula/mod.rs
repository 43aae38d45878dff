//! The verbs of `jaula`, one file each, and what they share: the context (home + state
//! root) and table printing.

pub mod build;
pub mod destroy;
pub mod enter;
pub mod exec;
pub mod kill;
pub mod list;
pub mod logs;
pub mod progress;
pub mod ps;
pub mod restart;
pub mod start;
pub mod status;
pub mod stop;
pub mod supervise;

use std::path::PathBuf;

use jaula_runtime::Runtime;
use jaula_server::{Home, Manager};

/// Exit code of `status` for a stopped server (LSB's "program is not running").
pub const EXIT_STOPPED: u8 = 3;

/// Where servers and containers live, from the global flags.
pub struct Ctx {
    pub home: PathBuf,
    pub root: PathBuf,
    pub manager: Manager,
}

impl Ctx {
    pub fn new(home: PathBuf, root: PathBuf) -> Ctx {
        // Absolute, because the supervisor gets them on its command line and runs in "/".
        let home = std::path::absolute(&home).unwrap_or(home);
        let root = std::path::absolute(&root).unwrap_or(root);
        let manager = Manager::new(Home::new(&home), Runtime::new(&root));
        Ctx {
            home,
            root,
            manager,
        }
    }

    /// How `start` re-runs this binary as a server's supervisor.
    pub fn start_options(&self) -> anyhow::Result<jaula_server::run::StartOptions> {
        let exe = std::env::current_exe()?;
        Ok(jaula_server::run::StartOptions {
            supervisor_program: exe,
            supervisor_args: vec![
                "--home".into(),
                self.home.to_string_lossy().into_owned(),
                "--root".into(),
                self.root.to_string_lossy().into_owned(),
                "__supervise".into(),
            ],
        })
    }
}

/// Prints rows as left-aligned columns (numbers right-aligned), two spaces apart.
pub fn print_table(header: &[&str], rows: &[Vec<String>], right: &[bool]) {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        let parts: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(
                |(i, c)| match (right.get(i).copied().unwrap_or(false), i == last) {
                    (true, _) => format!("{c:>w$}", w = width[i]),
                    (false, true) => c,
                    (false, false) => format!("{c:<w$}", w = width[i]),
                },
            )
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Splits a command line the way a shell would for plain words and quotes.
pub fn split_command(s: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.push(chars.next().unwrap_or('\\')),
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.push(chars.next().unwrap_or('\\'));
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    anyhow::ensure!(quote.is_none(), "unterminated quote in command {s:?}");
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell() {
        assert_eq!(split_command("sleep 100").unwrap(), ["sleep", "100"]);
        assert_eq!(
            split_command(r#"sh -c 'trap "" TERM; sleep 1000'"#).unwrap(),
            ["sh", "-c", "trap \"\" TERM; sleep 1000"]
        );
        assert_eq!(
            split_command(r#"a\ b "c\"d" ''"#).unwrap(),
            ["a b", "c\"d", ""]
        );
        assert!(split_command("'open").is_err());
    }
}
