//! HTTP plumbing shared by every route: the one place errors become statuses, and `/healthz`.

mod error;
mod health;

pub use error::{ApiError, json_status, recover};
pub use health::route as health_route;
