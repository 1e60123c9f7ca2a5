//! Criterion benches for the cas-rs crates; the benches live in `benches/`.
//!
//! Run them with `cargo bench -p cas-benches`. CI only compiles them (`cargo bench --no-run`):
//! performance is measured here, never in timed tests.
