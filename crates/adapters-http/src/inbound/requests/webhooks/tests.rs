//! Reading the webhook bodies: each rule and the order of the checks.

use super::*;

fn create(body: &str) -> Result<NewWebhook, RequestError> {
    NewWebhookBody::read(body.as_bytes())
}

fn update(body: &str) -> Result<WebhookUpdate, RequestError> {
    WebhookUpdateBody::read(body.as_bytes())
}

const BASE: &str = r#""url":"https://a.example/","description":"d""#;

#[test]
fn bodies_that_are_not_json_objects_are_invalid_json_body() {
    for body in ["", "not json", "[]", "\"x\"", "null", "{\"url\":"] {
        assert_eq!(create(body), Err(RequestError::InvalidJsonBody), "{body}");
        assert_eq!(update(body), Err(RequestError::InvalidJsonBody), "{body}");
    }
}

#[test]
fn url_is_checked_before_description() {
    assert_eq!(create("{}"), Err(RequestError::MissingUrl));
    assert_eq!(
        create(r#"{"url":null,"description":5}"#),
        Err(RequestError::UrlNotAString)
    );
    assert_eq!(
        create(r#"{"url":"nope","description":5}"#),
        Err(RequestError::InvalidUrl)
    );
    assert_eq!(
        update(r#"{"description":5}"#),
        Err(RequestError::MissingUrl)
    );
}

#[test]
fn description_rules_follow_a_valid_url() {
    let url = r#""url":"https://a.example/hook""#;
    assert_eq!(
        create(&format!("{{{url}}}")),
        Err(RequestError::MissingDescription)
    );
    assert_eq!(
        create(&format!(r#"{{{url},"description":null}}"#)),
        Err(RequestError::DescriptionNotAString)
    );
    let long = "x".repeat(1025);
    assert_eq!(
        create(&format!(r#"{{{url},"description":"{long}"}}"#)),
        Err(RequestError::InvalidDescription)
    );
}

#[test]
fn the_optional_fields_are_checked_after_url_and_description() {
    assert_eq!(
        create(r#"{"url":"nope","enabledEvents":[]}"#),
        Err(RequestError::InvalidUrl)
    );
    assert_eq!(
        update(r#"{"url":"https://a.example/","status":"paused","rateLimit":0}"#),
        Err(RequestError::MissingDescription)
    );
    assert_eq!(
        update(&format!(
            r#"{{{BASE},"enabledEvents":[],"status":"paused"}}"#
        )),
        Err(RequestError::InvalidEnabledEvents)
    );
    assert_eq!(
        update(&format!(r#"{{{BASE},"status":"paused","rateLimit":0}}"#)),
        Err(RequestError::InvalidStatus)
    );
}

#[test]
fn nul_in_a_json_body_is_refused_by_the_field_that_holds_it() {
    let body = |url: &str, description: &str| {
        serde_json::json!({"url": url, "description": description}).to_string()
    };
    let ok = "https://a.example/";
    assert_eq!(
        create(&body("https://a.example/\0", "d")),
        Err(RequestError::InvalidUrl)
    );
    assert_eq!(
        create(&body(ok, "d\0")),
        Err(RequestError::InvalidDescription)
    );
    assert_eq!(
        update(&body("https://a.example/\0", "d")),
        Err(RequestError::InvalidUrl)
    );
    assert_eq!(
        update(&body(ok, "d\0")),
        Err(RequestError::InvalidDescription)
    );
    // The JSON escape and the raw byte are the same character.
    assert_eq!(
        create(r#"{"url":"https://a.example/","description":"d\u0000"}"#),
        Err(RequestError::InvalidDescription)
    );
    // A lone surrogate is no character at all: not JSON we can read.
    assert_eq!(
        create(r#"{"url":"https://a.example/","description":"\ud800"}"#),
        Err(RequestError::InvalidJsonBody)
    );
}

#[test]
fn a_create_body_keeps_url_and_description_as_written() {
    let new = create(r#"{"url":"HTTPS://A.example/Hook","description":"a\r\nb"}"#).unwrap();
    assert_eq!(new.url.as_str(), "HTTPS://A.example/Hook");
    assert_eq!(new.description.as_str(), "a\r\nb");
}

#[test]
fn enabled_events_default_to_all_and_reject_unknown_or_empty() {
    assert_eq!(
        create(&format!("{{{BASE}}}")).map(|new| new.enabled_events),
        Ok(EnabledEvents::all())
    );
    assert_eq!(
        create(&format!(
            r#"{{{BASE},"enabledEvents":["user.created","user.created"]}}"#
        ))
        .map(|new| new.enabled_events.iter().collect::<Vec<_>>()),
        Ok(vec![EventType::UserCreated])
    );
    for bad in [
        "[]",
        "[\"user.deleted\"]",
        "\"user.created\"",
        "null",
        "[1]",
    ] {
        assert_eq!(
            create(&format!(r#"{{{BASE},"enabledEvents":{bad}}}"#)),
            Err(RequestError::InvalidEnabledEvents),
            "{bad}"
        );
        assert_eq!(
            update(&format!(r#"{{{BASE},"enabledEvents":{bad}}}"#)),
            Err(RequestError::InvalidEnabledEvents),
            "{bad}"
        );
    }
}

#[test]
fn an_update_leaves_out_what_is_absent() {
    assert_eq!(
        update(&format!("{{{BASE}}}")),
        Ok(WebhookUpdate {
            url: WebhookUrl::new("https://a.example/").unwrap(),
            description: Description::new("d").unwrap(),
            enabled_events: None,
            status: None,
            rate_limit: None,
            headers: None,
            ordering: None,
        })
    );
}

#[test]
fn update_reads_status_and_rate_limit() {
    let parsed = update(&format!(r#"{{{BASE},"status":"disabled","rateLimit":10}}"#));
    assert_eq!(
        parsed.as_ref().map(|r| r.status),
        Ok(Some(WebhookStatus::Disabled))
    );
    assert_eq!(
        parsed.map(|r| r.rate_limit),
        Ok(RateLimit::new(10).ok().map(Some))
    );
    assert_eq!(
        update(&format!(r#"{{{BASE},"rateLimit":null}}"#)).map(|r| r.rate_limit),
        Ok(Some(None))
    );
    for bad in [
        "0",
        "-1",
        "1.5",
        "10.0",
        "\"5\"",
        "4294967296",
        "18446744073709551615",
    ] {
        assert_eq!(
            update(&format!(r#"{{{BASE},"rateLimit":{bad}}}"#)),
            Err(RequestError::InvalidRateLimit),
            "{bad}"
        );
    }
    for bad in ["\"paused\"", "null", "true", "\"Enabled\""] {
        assert_eq!(
            update(&format!(r#"{{{BASE},"status":{bad}}}"#)),
            Err(RequestError::InvalidStatus),
            "{bad}"
        );
    }
}

#[test]
fn a_create_body_ignores_status_and_rate_limit() {
    assert!(create(&format!(r#"{{{BASE},"status":"paused","rateLimit":0}}"#)).is_ok());
}

#[test]
fn headers_are_read_after_the_other_fields() {
    assert_eq!(
        create(r#"{"url":"nope","description":"d","headers":5}"#),
        Err(RequestError::InvalidUrl)
    );
    assert_eq!(
        create(&format!(
            r#"{{{BASE},"enabledEvents":[],"headers":{{"Host":"x"}}}}"#
        )),
        Err(RequestError::InvalidEnabledEvents)
    );
    assert_eq!(
        update(&format!(r#"{{{BASE},"rateLimit":0,"headers":5}}"#)),
        Err(RequestError::InvalidRateLimit)
    );
}

#[test]
fn headers_absent_null_or_empty_mean_none_on_create_and_unchanged_or_removed_on_update() {
    for body in [
        format!("{{{BASE}}}"),
        format!(r#"{{{BASE},"headers":null}}"#),
        format!(r#"{{{BASE},"headers":{{}}}}"#),
    ] {
        assert_eq!(create(&body).map(|new| new.headers), Ok(None), "{body}");
    }
    assert_eq!(update(&format!("{{{BASE}}}")).map(|u| u.headers), Ok(None));
    for removal in ["null", "{}"] {
        assert_eq!(
            update(&format!(r#"{{{BASE},"headers":{removal}}}"#)).map(|u| u.headers),
            Ok(Some(None)),
            "{removal}"
        );
    }
}

#[test]
fn headers_are_read_into_custom_headers() {
    let body = format!(r#"{{{BASE},"headers":{{"X-Api-Key":"k3y","Authorization":"Bearer t"}}}}"#);
    let expected =
        CustomHeaders::new([("Authorization", "Bearer t"), ("X-Api-Key", "k3y")]).unwrap();
    assert_eq!(
        create(&body).map(|new| new.headers),
        Ok(Some(expected.clone()))
    );
    assert_eq!(update(&body).map(|u| u.headers), Ok(Some(Some(expected))));
}

#[test]
fn bad_headers_are_invalid_headers_and_reserved_names_reserved_header_name() {
    let too_many: String = (0..21)
        .map(|i| format!(r#""X-{i}":"v""#))
        .collect::<Vec<_>>()
        .join(",");
    let long = "v".repeat(1025);
    for bad in [
        "5".to_owned(),
        r#""X-Api-Key: k""#.to_owned(),
        r#"["X-Api-Key"]"#.to_owned(),
        r#"{"X-Api-Key":5}"#.to_owned(),
        r#"{"X-Api-Key":null}"#.to_owned(),
        r#"{"X Api":"k"}"#.to_owned(),
        r#"{"X-Api-Key":"a\r\nInjected: 1"}"#.to_owned(),
        r#"{"X-A":"1","x-a":"2"}"#.to_owned(),
        format!(r#"{{"X-Long":"{long}"}}"#),
        format!("{{{too_many}}}"),
    ] {
        let body = format!(r#"{{{BASE},"headers":{bad}}}"#);
        assert_eq!(create(&body), Err(RequestError::InvalidHeaders), "{bad}");
        assert_eq!(update(&body), Err(RequestError::InvalidHeaders), "{bad}");
    }
    for reserved in [
        "Content-Type",
        "user-agent",
        "HOST",
        "content-length",
        "Webhook-Id",
    ] {
        let body = format!(r#"{{{BASE},"headers":{{"{reserved}":"x"}}}}"#);
        assert_eq!(
            create(&body),
            Err(RequestError::ReservedHeader),
            "{reserved}"
        );
        assert_eq!(
            update(&body),
            Err(RequestError::ReservedHeader),
            "{reserved}"
        );
    }
}

#[test]
fn ordering_is_read_last() {
    assert_eq!(
        create(r#"{"url":"nope","description":"d","ordering":5}"#),
        Err(RequestError::InvalidUrl)
    );
    assert_eq!(
        create(&format!(r#"{{{BASE},"headers":5,"ordering":"lifo"}}"#)),
        Err(RequestError::InvalidHeaders)
    );
    assert_eq!(
        update(&format!(r#"{{{BASE},"rateLimit":0,"ordering":"lifo"}}"#)),
        Err(RequestError::InvalidRateLimit)
    );
}

#[test]
fn ordering_fifo_is_read_and_null_or_absent_means_none_or_removed_or_unchanged() {
    let fifo = format!(r#"{{{BASE},"ordering":"fifo"}}"#);
    let null = format!(r#"{{{BASE},"ordering":null}}"#);
    let absent = format!("{{{BASE}}}");
    let fifo_ordering = Some(DeliveryOrdering::Fifo);
    assert_eq!(create(&fifo).map(|new| new.ordering), Ok(fifo_ordering));
    assert_eq!(create(&null).map(|new| new.ordering), Ok(None));
    assert_eq!(create(&absent).map(|new| new.ordering), Ok(None));
    assert_eq!(update(&fifo).map(|u| u.ordering), Ok(Some(fifo_ordering)));
    assert_eq!(update(&null).map(|u| u.ordering), Ok(Some(None)));
    assert_eq!(update(&absent).map(|u| u.ordering), Ok(None));
}

#[test]
fn any_other_ordering_is_invalid_ordering() {
    for bad in [
        r#""none""#,
        r#""FIFO""#,
        r#""lifo""#,
        r#""""#,
        "5",
        "true",
        r#"["fifo"]"#,
        r#"{"type":"fifo"}"#,
    ] {
        let body = format!(r#"{{{BASE},"ordering":{bad}}}"#);
        assert_eq!(create(&body), Err(RequestError::InvalidOrdering), "{bad}");
        assert_eq!(update(&body), Err(RequestError::InvalidOrdering), "{bad}");
    }
}
