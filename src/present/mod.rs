//! What `check` and `/admin` both show, as typed values: the reminder plan in words, the page each
//! known event's emails link to, a step rendered for a preview, test sends, amounts and the
//! figures in words. `check` prints them; `web` renders them.

mod events;
mod names;
mod plan;
mod preview;
mod stats;

pub use events::{
    EVENTS_SHOWN, EventListing, EventPage, ListedEvent, Lookups, describe_event, event_pages,
};
pub use names::email_name;
pub use plan::{plan_in_words, states_in_words};
pub use preview::{TestSend, TestSends, order_context, render_step, send_tests};
pub use stats::{
    about, experiment_lines, experiment_sentence, favoured, pace, rands, stats_in_words,
    timing_lines, verdict,
};
