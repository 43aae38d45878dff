//! `jaula ps [NAME] [--json]`: every process with its context; the host is context 0.

use jaula_server::monitor;
use jaula_server::units::{format_bytes, format_duration};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this server's (or container's) processes; `host` for context 0.
    pub name: Option<String>,
    /// One JSON array of objects instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let rows = monitor::ps(&ctx.manager, a.name.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    let header = [
        "PID", "VPID", "CTX", "NAME", "USER", "VSZ", "RSS", "STAT", "TIME", "COMMAND",
    ];
    let right = [
        true, true, true, false, false, true, true, false, true, false,
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.pid.to_string(),
                r.vpid.to_string(),
                r.ctx.map_or_else(|| "-".into(), |c| c.to_string()),
                r.name.clone(),
                r.user.clone(),
                format_bytes(r.vsz),
                format_bytes(r.rss),
                r.stat.clone(),
                format_duration(r.time as u64),
                r.command.clone(),
            ]
        })
        .collect();
    super::print_table(&header, &cells, &right);
    Ok(0)
}
