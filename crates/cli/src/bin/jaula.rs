//! `jaula`: the virtual-server administration front end.
fn main() {}
