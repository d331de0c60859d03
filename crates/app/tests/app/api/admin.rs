//! Tenancy: the admin API, API keys, and isolation between organizations.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_answer, on_both_backends, TestApp, ADMIN_TOKEN};

on_both_backends!(
    another_organizations_group_is_group_not_found,
    a_revoked_key_is_unauthorized_at_once,
    keys_of_one_organization_share_its_groups,
    admin_calls_need_the_admin_token,
    admin_creates_a_group_with_a_chosen_id_once,
    admin_refuses_bad_names_and_unknown_organizations,
    revoking_an_unknown_key_is_not_found,
);

async fn another_organizations_group_is_group_not_found(app: TestApp) {
    let ours = app
        .create_webhook("https://integration.example/a", "ours")
        .await;
    let id = ours["id"].as_str().unwrap();
    let intruder = app.new_tenant().await;
    let key = Some(intruder.api_key.as_str());
    let body = json!({"url": "https://evil.example/", "description": "x"});
    for (method, path, body) in [
        (Method::GET, app.group_path(""), None),
        (Method::POST, app.group_path(""), Some(body.clone())),
        (Method::GET, app.group_path(&format!("/{id}")), None),
        (Method::PUT, app.group_path(&format!("/{id}")), Some(body)),
        (Method::DELETE, app.group_path(&format!("/{id}")), None),
    ] {
        let response = app.call_with_key(method, &path, body, key).await;
        assert_answer(
            response,
            StatusCode::BAD_REQUEST,
            json!({"error": "Group not found"}),
        )
        .await;
    }
    let listed: Vec<Value> = app
        .call(Method::GET, &app.group_path(""), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["description"], "ours");
}

async fn a_revoked_key_is_unauthorized_at_once(app: TestApp) {
    let ok = app.call(Method::GET, &app.group_path(""), None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let revoke = app
        .admin(
            Method::DELETE,
            &format!("/admin/api-keys/{}", app.tenant.api_key_id),
            None,
        )
        .await;
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let response = app.call(Method::GET, &app.group_path(""), None).await;
    assert_answer(
        response,
        StatusCode::UNAUTHORIZED,
        json!({"error": "Unauthorized"}),
    )
    .await;
    // Revoking again is harmless.
    let again = app
        .admin(
            Method::DELETE,
            &format!("/admin/api-keys/{}", app.tenant.api_key_id),
            None,
        )
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

async fn keys_of_one_organization_share_its_groups(app: TestApp) {
    app.create_webhook("https://integration.example/a", "a")
        .await;
    let second: Value = app
        .admin(
            Method::POST,
            &format!(
                "/admin/organizations/{}/api-keys",
                app.tenant.organization_id
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let key = second["key"].as_str().unwrap();
    assert_ne!(key, app.tenant.api_key);
    let listed: Vec<Value> = app
        .call_with_key(Method::GET, &app.group_path(""), None, Some(key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

async fn admin_calls_need_the_admin_token(app: TestApp) {
    for token in [None, Some("wrong"), Some("")] {
        let mut request = app
            .client
            .post(app.url("/admin/organizations"))
            .json(&json!({"name": "x"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_answer(
            response,
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized"}),
        )
        .await;
    }
    // The public API key is no admin token.
    let response = app
        .client
        .post(app.url("/admin/organizations"))
        .bearer_auth(&app.tenant.api_key)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_ne!(app.tenant.api_key, ADMIN_TOKEN);
}

async fn admin_creates_a_group_with_a_chosen_id_once(app: TestApp) {
    let path = format!("/admin/organizations/{}/groups", app.tenant.organization_id);
    let created = app
        .admin(
            Method::POST,
            &path,
            Some(json!({"name": "Chosen", "id": 777_001})),
        )
        .await;
    assert_answer(
        created,
        StatusCode::CREATED,
        json!({"id": 777_001, "name": "Chosen"}),
    )
    .await;
    let taken = app
        .admin(
            Method::POST,
            &path,
            Some(json!({"name": "Again", "id": 777_001})),
        )
        .await;
    assert_answer(
        taken,
        StatusCode::CONFLICT,
        json!({"error": "Group id already exists"}),
    )
    .await;
    let response = app.call(Method::GET, "/webhooks/777001", None).await;
    assert_answer(response, StatusCode::OK, json!([])).await;
}

async fn admin_refuses_bad_names_and_unknown_organizations(app: TestApp) {
    let response = app
        .admin(
            Method::POST,
            "/admin/organizations",
            Some(json!({"name": "   "})),
        )
        .await;
    assert_answer(
        response,
        StatusCode::BAD_REQUEST,
        json!({"error": "Invalid name"}),
    )
    .await;
    let response = app
        .admin(
            Method::POST,
            "/admin/organizations",
            Some(json!({"nom": "x"})),
        )
        .await;
    assert_answer(
        response,
        StatusCode::BAD_REQUEST,
        json!({"error": "Invalid JSON body"}),
    )
    .await;
    for org in ["org_01aaaaaaaaaaaaaaaaaaaaaaaa", "nope"] {
        let response = app
            .admin(
                Method::POST,
                &format!("/admin/organizations/{org}/groups"),
                Some(json!({"name": "g"})),
            )
            .await;
        assert_answer(
            response,
            StatusCode::NOT_FOUND,
            json!({"error": "Organization not found"}),
        )
        .await;
        let response = app
            .admin(
                Method::POST,
                &format!("/admin/organizations/{org}/api-keys"),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let path = format!("/admin/organizations/{}/groups", app.tenant.organization_id);
    let response = app
        .admin(Method::POST, &path, Some(json!({"name": "g", "id": 0})))
        .await;
    assert_answer(
        response,
        StatusCode::BAD_REQUEST,
        json!({"error": "Invalid id"}),
    )
    .await;
}

async fn revoking_an_unknown_key_is_not_found(app: TestApp) {
    for id in ["key_01aaaaaaaaaaaaaaaaaaaaaaaa", "nope"] {
        let response = app
            .admin(Method::DELETE, &format!("/admin/api-keys/{id}"), None)
            .await;
        assert_answer(
            response,
            StatusCode::NOT_FOUND,
            json!({"error": "API key not found"}),
        )
        .await;
    }
}
