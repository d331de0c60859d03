//! The tables, written by hand to match `migrations/{postgres,sqlite}`. Only
//! types both backends share (`BigInt`, `Text`, `Bool`, `Nullable`) appear here, which
//! is what lets one query serve both through `DbConnection`.

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    groups (id) {
        id -> BigInt,
        organization_id -> Text,
        name -> Text,
        created_at -> BigInt,
        operations -> Bool,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        organization_id -> Text,
        key_hash -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        group_id -> BigInt,
        url -> Text,
        description -> Text,
        status -> Text,
        enabled_events -> Text,
        rate_limit -> Nullable<BigInt>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        failing_since -> Nullable<BigInt>,
        rate_window -> Nullable<BigInt>,
        rate_count -> BigInt,
        headers -> Nullable<Text>,
        ordering -> Nullable<Text>,
        disabled_reason -> Nullable<Text>,
        disabled_at -> Nullable<BigInt>,
        probe_at -> Nullable<BigInt>,
        probe_wait -> Nullable<BigInt>,
        probe_successes -> BigInt,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        group_id -> BigInt,
        event_type -> Text,
        payload -> Text,
        idempotency_key -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        event_id -> Text,
        webhook_id -> Text,
        group_id -> BigInt,
        status -> Text,
        attempt_count -> BigInt,
        next_attempt_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        leased_until -> Nullable<BigInt>,
        seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    attempts (delivery_id, number) {
        delivery_id -> Text,
        number -> BigInt,
        attempted_at -> BigInt,
        duration_ms -> BigInt,
        response_status -> Nullable<BigInt>,
        response_body -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    portal_passes (hash) {
        hash -> Text,
        kind -> Text,
        group_id -> BigInt,
        organization_id -> Text,
        api_key_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    /// How far retention has looked at old events: one row.
    events_checked (one) {
        one -> Integer,
        created_at -> BigInt,
        id -> Text,
    }
}

diesel::joinable!(api_keys -> organizations (organization_id));
diesel::joinable!(groups -> organizations (organization_id));
diesel::joinable!(webhooks -> groups (group_id));
diesel::joinable!(events -> groups (group_id));
diesel::joinable!(deliveries -> events (event_id));
diesel::joinable!(deliveries -> webhooks (webhook_id));
diesel::joinable!(attempts -> deliveries (delivery_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    groups,
    api_keys,
    webhooks,
    events,
    events_checked,
    deliveries,
    attempts,
    portal_passes,
);
