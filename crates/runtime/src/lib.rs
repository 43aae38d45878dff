//! The context engine: spec -> plan -> running container, lifecycle verbs, state store.
