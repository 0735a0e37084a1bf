//! `Config::from_toml` on any UTF-8 text: never panics; what it accepts validates again and
//! survives a round trip through TOML unchanged.
//!
//! `from_toml` also reads QUICKET_FOLLOWUP_{WEBHOOK_TOKEN,ADMIN_PASSWORD,SMTP_URL}; run.sh unsets
//! them so that only the input decides the outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicket_followup::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(Some(text), None) else {
        return;
    };

    if let Err(e) = config.validate() {
        panic!("from_toml accepted a config that validate() then refuses: {e}");
    }
    // The service derives these at start; they must not panic on an accepted config.
    let _ = config.public_url();
    let _ = config.webhook_url("0123456789abcdef");
    for step in &config.reminders {
        let _ = step.timing();
    }

    // Round trip: what the loader accepted, written out as TOML, loads back to the same config.
    let written = match toml::to_string(&config) {
        Ok(written) => written,
        Err(e) => panic!("an accepted config cannot be written as TOML: {e}\n{config:#?}"),
    };
    let reloaded = match Config::from_toml(Some(&written), None) {
        Ok(reloaded) => reloaded,
        Err(e) => {
            panic!("an accepted config, written out, is refused: {e}\n--- written ---\n{written}")
        }
    };
    let rewritten = toml::to_string(&reloaded).expect("written once, so writable again");
    assert_eq!(written, rewritten, "the round trip changed the config");
});
