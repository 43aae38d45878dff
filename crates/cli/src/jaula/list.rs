//! `jaula list [--json]`: vserver-stat's columns, plus STATE and IP.

use jaula_server::monitor::{self, ListRow};
use jaula_server::units::{format_bytes, format_duration};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON array of objects instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<u8> {
    let rows = monitor::list(&ctx.manager)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    let header = [
        "CTX", "PROC", "VSZ", "RSS", "userTIME", "sysTIME", "UPTIME", "NAME", "STATE", "IP",
    ];
    let right = [
        true, true, true, true, true, true, true, false, false, false,
    ];
    let cells: Vec<Vec<String>> = rows.iter().map(cells).collect();
    super::print_table(&header, &cells, &right);
    Ok(0)
}

fn cells(r: &ListRow) -> Vec<String> {
    let running = r.state == "running" || r.kind == monitor::Kind::Host;
    let dash = || "-".to_string();
    let num = |s: String| if running { s } else { dash() };
    vec![
        r.ctx.map_or_else(dash, |c| c.to_string()),
        num(r.procs.to_string()),
        num(format_bytes(r.vsz)),
        num(format_bytes(r.rss)),
        num(format_duration(r.user_time as u64)),
        num(format_duration(r.sys_time as u64)),
        r.uptime
            .filter(|_| running)
            .map_or_else(dash, format_duration),
        r.name.clone(),
        r.state.clone(),
        if r.ips.is_empty() {
            dash()
        } else {
            r.ips.join(",")
        },
    ]
}
