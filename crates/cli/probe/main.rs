//! Probe run inside contexts by the integration tests: it reports what it sees as JSON.
fn main() {}
