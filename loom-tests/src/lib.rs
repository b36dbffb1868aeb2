//! Loom models of spillway live in `tests/`; run them with `RUSTFLAGS="--cfg loom"`.
