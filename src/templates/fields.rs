//! Every value an email may name, in the organiser's words, and the nearest one to a misspelt
//! name ("Did you mean `event.name` (the event's name)?").

/// Each value a template may name, with what it holds in words. A test keeps it equal to what
/// [`super::EmailContext`] really holds.
pub const FIELDS: &[(&str, &str)] = &[
    ("buyer.first_name", "the buyer's first name"),
    ("buyer.name", "the buyer's full name"),
    ("buyer.email", "the buyer's email address"),
    ("event.name", "the event's name"),
    ("event.date", "the event's date and time, written out"),
    ("event.starts_at", "the event's start, for the date filter"),
    ("event.venue", "the venue"),
    ("event.url", "the event's page"),
    ("event.image_url", "the event's picture"),
    ("event.id", "the event's number on Quicket"),
    ("order.amount", "the order's total"),
    ("order.tickets", "the tickets chosen"),
    ("order.reference", "the order's reference"),
    ("order.status", "the order's state"),
    ("reminder.name", "the reminder step's name"),
    (
        "reminder.number",
        "which email this is to the buyer: 1, 2, ...",
    ),
    ("links.event", "the tracked link to the event's page"),
    ("links.unsubscribe", "the unsubscribe link"),
    ("organiser.name", "your name, as in the From address"),
];

/// What each ticket in `order.tickets` holds.
pub const TICKET_FIELDS: &[(&str, &str)] = &[
    ("type", "the ticket's type"),
    ("price", "the ticket's price"),
    ("attendee_name", "the attendee's name"),
];

/// The sentence for a template that names `name`, which does not exist: with the nearest value
/// that does, when one is near enough to be a slip of the keyboard.
pub fn unknown_name(name: &str) -> String {
    let mut sentence = format!("the email mentions `{name}`, which does not exist.");
    if let Some((suggestion, words)) = nearest(name) {
        sentence.push_str(&format!(" Did you mean `{suggestion}` ({words})?"));
        return sentence;
    }
    let section = name.split('.').next().unwrap_or(name);
    let same: Vec<String> = FIELDS
        .iter()
        .filter(|(f, _)| f.split('.').next() == Some(section))
        .map(|(f, words)| format!("`{f}` ({words})"))
        .collect();
    if same.is_empty() {
        sentence.push_str(
            " An email can use the values of `buyer`, `event`, `order`, `reminder`, `links` and \
             `organiser` (the README lists them, under Editing the emails).",
        );
    } else {
        sentence.push_str(&format!(" `{section}` has {}.", same.join(", ")));
    }
    sentence
}

/// The known value nearest to `name`: a whole name (`event.nmae`), or the last part of a name
/// whose first part is a ticket of a loop (`t.prize` -> `t.price`).
fn nearest(name: &str) -> Option<(String, &'static str)> {
    let close = |a: &str, b: &str| {
        let distance = strsim::damerau_levenshtein(a, b);
        distance > 0 && distance <= (b.len() / 4).clamp(1, 3)
    };
    if let Some((field, words)) = FIELDS.iter().find(|(f, _)| close(name, f)) {
        return Some(((*field).to_string(), words));
    }
    let (head, last) = name.rsplit_once('.')?;
    if FIELDS
        .iter()
        .any(|(f, _)| f.starts_with(&format!("{head}.")))
    {
        return None;
    }
    TICKET_FIELDS
        .iter()
        .find(|(f, _)| close(last, f))
        .map(|(f, words)| (format!("{head}.{f}"), *words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_what_an_email_really_sees() {
        let value = serde_json::to_value(super::super::sample_context()).unwrap();
        let mut seen = Vec::new();
        for (section, inner) in value.as_object().unwrap() {
            for key in inner.as_object().unwrap().keys() {
                seen.push(format!("{section}.{key}"));
            }
        }
        let mut listed: Vec<String> = FIELDS.iter().map(|(f, _)| f.to_string()).collect();
        seen.sort();
        listed.sort();
        assert_eq!(listed, seen);
        let ticket = &value["order"]["tickets"][0];
        let mut ticket_keys: Vec<&str> = ticket
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut listed: Vec<&str> = TICKET_FIELDS.iter().map(|(f, _)| *f).collect();
        ticket_keys.sort();
        listed.sort();
        assert_eq!(listed, ticket_keys);
    }

    #[test]
    fn a_slip_of_the_keyboard_gets_a_suggestion_in_words() {
        assert_eq!(
            unknown_name("event.nmae"),
            "the email mentions `event.nmae`, which does not exist. Did you mean `event.name` \
             (the event's name)?"
        );
        assert!(unknown_name("buyer.frist_name").contains("`buyer.first_name`"));
        assert!(unknown_name("order.refrence").contains("`order.reference`"));
        assert!(
            unknown_name("links.unsub").contains(
                "`links` has `links.event` (the tracked link to the event's page), \
                 `links.unsubscribe` (the unsubscribe link)."
            ),
            "{}",
            unknown_name("links.unsub")
        );
        assert!(unknown_name("ticket.prise").contains("`ticket.price` (the ticket's price)"));
        assert!(unknown_name("weather.today").contains("the README lists them"));
    }
}
