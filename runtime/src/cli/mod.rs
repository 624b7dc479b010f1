//! Commands beside `run`: `check` (what the daemon would do with one file)
//! and `new` (`scaffold`, a plugin project that builds as is).

pub mod check;
pub mod scaffold;
