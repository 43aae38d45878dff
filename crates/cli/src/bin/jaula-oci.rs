//! `jaula-oci`: the runc-compatible OCI runtime front end.

use clap::Parser;

fn main() {
    let cli = match jaula_cli::oci::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = jaula_cli::init_logging(cli.log.as_ref(), cli.log_format, cli.debug) {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
    let code = match jaula_cli::oci::main(cli) {
        Ok(code) => code,
        Err(e) => {
            jaula_cli::report(&e);
            1
        }
    };
    std::process::exit(code);
}
