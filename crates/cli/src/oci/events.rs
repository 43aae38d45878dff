//! `jaula-oci events`: stats as JSON lines (`--stats` prints one), and OOM events.

use std::time::Duration;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

/// "5s", "500ms", "1m" or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => anyhow::bail!("invalid duration {s:?}"),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn stats_event(rt: &jaula_runtime::Runtime, id: &str) -> Result<String> {
    let st = rt.stats(id)?;
    Ok(serde_json::json!({"type": "stats", "id": id, "data": st}).to_string())
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    if a.stats {
        println!("{}", stats_event(rt, &a.id)?);
        return Ok(0);
    }
    let interval = parse_duration(&a.interval)?;
    let mut watcher = rt.cgroup(&a.id)?.oom_watcher()?;
    loop {
        match watcher.wait(Some(interval))? {
            jaula_cgroups::OomEvent::Oom => {
                println!("{}", serde_json::json!({"type": "oom", "id": a.id}))
            }
            jaula_cgroups::OomEvent::Gone => return Ok(0),
            jaula_cgroups::OomEvent::Timeout => {}
        }
        match stats_event(rt, &a.id) {
            Ok(line) => println!("{line}"),
            // The container is gone: the event stream ends.
            Err(_) => return Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap().as_secs(), 5);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert_eq!(parse_duration("2").unwrap().as_secs(), 2);
        assert!(parse_duration("x").is_err());
    }
}
