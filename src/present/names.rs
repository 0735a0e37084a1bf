//! Names for people: an email (a template directory) by what it is for, so that the organiser's
//! pages need not show directory names such as `eft_pending`.

/// An email's name for people: the shipped emails by what they are for, any other template
/// directory with its dashes and underscores as spaces.
pub fn email_name(template: &str) -> String {
    match template {
        "abandoned" => "Abandoned checkout email".into(),
        "abandoned_short" => "Abandoned checkout email (short)".into(),
        "eft_pending" => "EFT payment reminder".into(),
        "last_chance" => "Last-chance email".into(),
        other => crate::config::step_display_name(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_steps_read_as_what_they_are_for() {
        assert_eq!(email_name("eft_pending"), "EFT payment reminder");
        assert_eq!(email_name("vip_follow-up"), "Vip follow up");
        use crate::config::step_display_name as step;
        assert_eq!(step("abandoned-1"), "First reminder");
        assert_eq!(step("abandoned-2"), "Second reminder");
        assert_eq!(step("abandoned-9"), "Reminder 9");
        assert_eq!(step("eft-1"), "EFT payment reminder");
        assert_eq!(step("last-chance"), "Last-chance reminder");
        assert_eq!(step("sunday_nudge"), "Sunday nudge");
    }
}
