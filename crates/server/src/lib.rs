//! Virtual servers: definitions, build methods, orchestration, monitoring.
