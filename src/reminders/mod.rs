//! The reminder engine: the pure planner, the pass that decides and claims, the delivery that
//! sends, and the schedule that runs passes.

pub mod breaker;
pub mod clock;
mod decide;
mod deliver;
pub mod engine;
pub mod forecast;
pub mod pass;
pub mod planner;
pub mod remindable;
pub mod report;
pub mod schedule;

pub use engine::{Engine, PassError, ReloadStatus, Settings};
pub use report::{LineSink, PassLine, PassReport};
