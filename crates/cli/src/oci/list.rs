//! `jaula-oci list`: a table, JSON, or just IDs.

use anyhow::Result;

/// Output format of `list` and `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: Format,
    /// Print only the IDs.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    let states = rt.list()?;
    if a.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&states)?),
        Format::Table => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<30} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for s in &states {
                let owner = if s.owner.is_empty() { "root" } else { &s.owner };
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<30} {owner}",
                    s.id,
                    s.pid.unwrap_or(0),
                    s.status,
                    s.bundle.display(),
                    s.created
                );
            }
        }
    }
    Ok(0)
}
