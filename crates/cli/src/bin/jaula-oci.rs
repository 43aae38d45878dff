//! `jaula-oci`: the runc-compatible OCI runtime front end.
fn main() {}
