//! The build's progress display: one rewritten line on a terminal, phase lines otherwise.

use std::io::{IsTerminal, Write};

use jaula_server::build::Progress;

pub struct TermProgress {
    name: String,
    phase: String,
    tty: bool,
    drawn: bool,
}

impl TermProgress {
    pub fn new(name: &str) -> TermProgress {
        TermProgress {
            name: name.into(),
            phase: String::new(),
            tty: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Ends the progress line.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }

    fn draw(&mut self, text: &str) {
        let mut err = std::io::stderr();
        let width = 78;
        let line: String = text.chars().take(width).collect();
        let _ = write!(err, "\r{line:<width$}");
        let _ = err.flush();
        self.drawn = true;
    }
}

impl Progress for TermProgress {
    fn phase(&mut self, phase: &str) {
        self.phase = phase.to_string();
        // Without a terminal nobody watches: the result line (or error) is what counts.
        if self.tty {
            let text = format!("{}: {phase}", self.name);
            self.draw(&text);
        }
    }

    fn step(&mut self, done: u64, total: Option<u64>, detail: &str) {
        if !self.tty {
            return;
        }
        let count = match total {
            Some(t) if t >= done => {
                let filled = (done * 20 / t.max(1)) as usize;
                format!(
                    "[{}{}] {done}/{t}",
                    "#".repeat(filled),
                    ".".repeat(20 - filled)
                )
            }
            _ => format!("{done}"),
        };
        let text = format!("{}: {} {count} {detail}", self.name, self.phase);
        self.draw(&text);
    }
}
