//! Shared by the fuzz targets in `fuzz_targets/` and by tests/properties.rs
//! (which includes these files by path): `source` turns bytes into choices,
//! `generate` builds guest input from them, `oracles` checks the host's answers.

pub mod generate;
pub mod oracles;
pub mod source;
