//! Running a plugin: its instance (`instance`, with the store's contents in
//! `state`) and the task that makes its calls one at a time (`worker`), on
//! the guest threads (`guest_runtime`); the bounds around it (`limits`, a
//! tenant's `quota`, the epoch clock and compile slots in `engine`); why a
//! call failed (`error`); and heap given back after unloads (`heap`).

pub mod engine;
pub mod error;
pub mod guest_runtime;
pub mod heap;
pub mod instance;
pub mod limits;
pub mod quota;
pub mod state;
pub mod worker;
