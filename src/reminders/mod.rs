//! The reminder engine: the pure planner, the pass that sends, and the schedule that runs passes.

pub mod breaker;
pub mod pass;
pub mod planner;
pub mod schedule;

pub use pass::{Engine, PassError, PassLine, PassReport};
