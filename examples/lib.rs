//! Runnable examples of ATE: `cargo run --release --example hello-world`.
