//! `jaula-oci ps`: the container's processes, as pids (JSON) or a ps-like table.

use anyhow::Result;

use super::list::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: Format,
    pub id: String,
    /// Accepted for runc compatibility (ps options); the table has fixed columns.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(rt: &jaula_runtime::Runtime, a: Args) -> Result<i32> {
    let pids = rt.pids(&a.id)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&pids)?),
        Format::Table => {
            println!("{:>8} CMD", "PID");
            for p in pids {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|b| {
                        String::from_utf8_lossy(&b)
                            .replace('\0', " ")
                            .trim_end()
                            .to_owned()
                    })
                    .unwrap_or_default();
                println!("{p:>8} {cmd}");
            }
        }
    }
    Ok(0)
}
