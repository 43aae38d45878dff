//! Virtual servers: definitions (`server.toml`), build methods, start/stop orchestration and
//! the spectator views (`list`, `ps`).
//!
//! A server is a directory under [`Home`]: `server.toml` plus `rootfs/`. Building writes one;
//! starting turns its definition into an OCI spec and hands it to `jaula_runtime` under the
//! server's name, so `jaula-oci` and `jaula` see the same containers. Nothing here prints:
//! the `jaula` binary shows what these functions return.

pub mod build;
pub mod config;
pub mod home;
pub mod idmap;
pub mod logs;
pub mod monitor;
pub mod name;
pub mod passwd;
pub mod run;
pub mod signal;
pub mod spec;
pub mod units;

#[cfg(test)]
mod testutil;

pub use config::{InitStyle, NetMode, ServerConfig};
pub use home::{Home, HomeError, Server};
pub use run::{Manager, RunError, RunState};
