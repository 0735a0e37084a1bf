//! Which fetches of an email's links were people and which were link scanners (Microsoft
//! Defender Safe Links, Mimecast, Proofpoint, Barracuda and the like fetch every link of an email
//! when it arrives, and again when it is opened). A scanner's fetch is still recorded, and still
//! redirected at once, but marked, and never counted as a click for attribution. Pure: the
//! request's facts and the email's other fetches in, a reason (or none) out. The rules are in the
//! README ("Clicks that were people").

use chrono::{DateTime, TimeDelta, Utc};

/// The timing rules (`[experiment] scanner_after_delivery` and `scanner_links_within`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A fetch this soon after the email was sent is a scanner's (people take longer to open it).
    pub after_delivery: TimeDelta,
    /// Fetches of two different links of one email this close together are a scanner's.
    pub together: TimeDelta,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            after_delivery: TimeDelta::seconds(20),
            together: TimeDelta::seconds(10),
        }
    }
}

/// Parts of user agents that only link scanners, previewers and programs send (lower case).
const SCANNER_AGENTS: &[&str] = &[
    // Email security gateways and their link checkers.
    "safelinks",
    "microsoft office existence discovery",
    "ms-office",
    "proofpoint",
    "mimecast",
    "barracuda",
    "ironport",
    "cisco",
    "trendmicro",
    "trend micro",
    "forcepoint",
    "fortiguard",
    "fortimail",
    "sophos",
    "symantec",
    "messagelabs",
    "zscaler",
    "urlscan",
    "virustotal",
    "scanner",
    // Previews of a forwarded or pasted link (the person has not clicked it).
    "facebookexternalhit",
    "whatsapp",
    "skypeuripreview",
    "googleimageproxy",
    "yahoomailproxy",
    "preview",
    // Crawlers and programs.
    "bot",
    "crawler",
    "spider",
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "httpclient",
];

/// Which link of an email was fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The tracked event link (`/r/{token}`).
    Event,
    /// The unsubscribe page (`GET /unsubscribe/{token}`, which changes nothing).
    Unsubscribe,
}

impl Link {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Event => "event",
            Link::Unsubscribe => "unsubscribe",
        }
    }

    /// The link for a stored name.
    pub fn parse(text: &str) -> Option<Link> {
        [Link::Event, Link::Unsubscribe]
            .into_iter()
            .find(|l| l.as_str() == text)
    }
}

/// What the request itself says.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// A HEAD request (a browser following a link never sends one).
    pub head: bool,
    /// The User-Agent header, if any.
    pub user_agent: Option<String>,
    /// The Purpose or Sec-Purpose header (`prefetch`, `prerender`).
    pub purpose: Option<String>,
}

/// Why a fetch looks like a scanner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A HEAD request.
    Head,
    /// A prefetch or prerender, announced as such.
    Prefetch,
    /// No User-Agent at all.
    NoUserAgent,
    /// A User-Agent of a known scanner, previewer or program.
    UserAgent,
    /// Within [`Timing::after_delivery`] of the email being sent.
    AtDelivery,
    /// Another link of the same email was fetched within [`Timing::together`].
    AllLinks,
}

impl Reason {
    /// What is stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Head => "HEAD request",
            Reason::Prefetch => "prefetch",
            Reason::NoUserAgent => "no user agent",
            Reason::UserAgent => "scanner user agent",
            Reason::AtDelivery => "within seconds of delivery",
            Reason::AllLinks => "every link of the email within seconds",
        }
    }
}

/// What the request alone says: HEAD, prefetch, no user agent or a scanner's user agent.
pub fn by_request(request: &Request) -> Option<Reason> {
    if request.head {
        return Some(Reason::Head);
    }
    if request
        .purpose
        .as_deref()
        .is_some_and(|p| p.to_ascii_lowercase().contains("prefetch") || p.contains("prerender"))
    {
        return Some(Reason::Prefetch);
    }
    let agent = request
        .user_agent
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if agent.is_empty() {
        return Some(Reason::NoUserAgent);
    }
    let agent = agent.to_ascii_lowercase();
    SCANNER_AGENTS
        .iter()
        .any(|s| agent.contains(s))
        .then_some(Reason::UserAgent)
}

/// The whole verdict for a fetch of `link` at `at`: the request's own signs first, then its
/// timing against the email's sending (`sent_at`) and its other fetches (`others`: link and time).
pub fn classify(
    timing: Timing,
    request: &Request,
    link: Link,
    at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    others: &[(Link, DateTime<Utc>)],
) -> Option<Reason> {
    if let Some(reason) = by_request(request) {
        return Some(reason);
    }
    if sent_at.is_some_and(|sent| at >= sent && at - sent < timing.after_delivery) {
        return Some(Reason::AtDelivery);
    }
    if together(timing, link, at, others) {
        return Some(Reason::AllLinks);
    }
    None
}

/// Whether another link of the email than `link` was fetched within [`Timing::together`] of
/// `at`. The same link twice is not enough: Safe Links checks a link again when the person
/// clicks it.
pub fn together(
    timing: Timing,
    link: Link,
    at: DateTime<Utc>,
    others: &[(Link, DateTime<Utc>)],
) -> bool {
    others
        .iter()
        .any(|(other, t)| *other != link && (at - *t).abs() <= timing.together)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browser() -> Request {
        Request {
            head: false,
            user_agent: Some(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1".into(),
            ),
            purpose: None,
        }
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_person_in_a_browser_is_a_person() {
        assert_eq!(
            classify(
                Timing::default(),
                &browser(),
                Link::Event,
                t(3600),
                Some(t(0)),
                &[]
            ),
            None
        );
        // The same link again a few seconds later (Safe Links' check at the time of the click,
        // or a double tap) does not make either a scanner.
        assert_eq!(
            classify(
                Timing::default(),
                &browser(),
                Link::Event,
                t(3605),
                Some(t(0)),
                &[(Link::Event, t(3600))]
            ),
            None
        );
    }

    #[test]
    fn the_request_gives_scanners_away() {
        let mut head = browser();
        head.head = true;
        assert_eq!(by_request(&head), Some(Reason::Head));
        let mut prefetch = browser();
        prefetch.purpose = Some("prefetch".into());
        assert_eq!(by_request(&prefetch), Some(Reason::Prefetch));
        for agent in [
            "Mozilla/5.0 (compatible; proofpoint)",
            "Mimecast URL Protect",
            "Barracuda Sentinel (EE)",
            "Microsoft Office Existence Discovery",
            "python-requests/2.31.0",
            "facebookexternalhit/1.1",
            "Mozilla/5.0 (compatible; Googlebot/2.1)",
        ] {
            let r = Request {
                user_agent: Some(agent.into()),
                ..Request::default()
            };
            assert_eq!(by_request(&r), Some(Reason::UserAgent), "{agent}");
        }
        assert_eq!(by_request(&Request::default()), Some(Reason::NoUserAgent));
    }

    #[test]
    fn timing_gives_scanners_away() {
        // Within seconds of delivery.
        assert_eq!(
            classify(
                Timing::default(),
                &browser(),
                Link::Event,
                t(5),
                Some(t(0)),
                &[]
            ),
            Some(Reason::AtDelivery)
        );
        assert_eq!(
            classify(
                Timing::default(),
                &browser(),
                Link::Event,
                t(25),
                Some(t(0)),
                &[]
            ),
            None
        );
        // The event link and the unsubscribe page within a second, an hour after delivery.
        assert_eq!(
            classify(
                Timing::default(),
                &browser(),
                Link::Event,
                t(3600),
                Some(t(0)),
                &[(Link::Unsubscribe, t(3599))]
            ),
            Some(Reason::AllLinks)
        );
        assert!(!together(
            Timing::default(),
            Link::Event,
            t(3600),
            &[(Link::Unsubscribe, t(3000))]
        ));
    }
}
