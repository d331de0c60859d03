//! A webhook's stats over a window of time.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use webhooks_domain::{DomainError, Resource, WebhookStats};

use super::api_doc::{error_responses, GroupIdParam, WebhookIdParam, FAULT};
use super::auth::Caller;
use super::deliveries::rfc3339;
use super::error::{ApiError, RequestError};
use super::requests::path::WebhookPath;
use super::requests::stats::StatsQuery;
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;

pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![Operation::documented(__path_stats, web::to(stats))],
        trailing_slash: TrailingSlash::Strict,
    }
}

/// A webhook's stats over a window. Deliveries count when they were created
/// in the window; attempts count when they belong to those deliveries,
/// whenever they were made.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookStats)]
struct StatsView<'a> {
    #[serde(rename = "webhookID")]
    webhook_id: &'a str,
    /// The window's start, included.
    #[schema(format = DateTime)]
    since: String,
    /// The window's end, excluded.
    #[schema(format = DateTime)]
    until: String,
    deliveries: DeliveryCountsView,
    /// Succeeded deliveries among the finished ones (succeeded or failed),
    /// from 0 to 1; `null` while none has finished.
    #[schema(required = true, minimum = 0, maximum = 1)]
    success_rate: Option<f64>,
    /// How many attempts the deliveries counted have had.
    attempts: u64,
    /// Those attempts' duration percentiles; `null` without attempts.
    #[schema(required = true)]
    latency_ms: Option<LatencyView>,
    /// The latest of those attempts answered 2xx; `null` when none did.
    #[schema(format = DateTime, required = true)]
    last_success_at: Option<String>,
    /// The latest of those attempts that failed (another status, a timeout,
    /// no connection); `null` when none did.
    #[schema(format = DateTime, required = true)]
    last_failure_at: Option<String>,
}

/// The deliveries created in the window, by current status.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeliveryCounts)]
struct DeliveryCountsView {
    pending: u64,
    succeeded: u64,
    failed: u64,
    total: u64,
}

/// Nearest-rank percentiles of the attempts' durations, in milliseconds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Latency)]
struct LatencyView {
    /// Half the attempts took no longer.
    p50: i64,
    /// 99 % of the attempts took no longer.
    p99: i64,
}

impl<'a> StatsView<'a> {
    fn new(webhook_id: &'a str, stats: &WebhookStats) -> Self {
        let counts = stats.deliveries;
        Self {
            webhook_id,
            since: rfc3339(stats.window.since()),
            until: rfc3339(stats.window.until()),
            deliveries: DeliveryCountsView {
                pending: counts.pending,
                succeeded: counts.succeeded,
                failed: counts.failed,
                total: counts.total(),
            },
            success_rate: stats.success_rate,
            attempts: stats.attempts,
            latency_ms: stats.latency.map(|latency| LatencyView {
                p50: latency.p50,
                p99: latency.p99,
            }),
            last_success_at: stats.last_success_at.map(rfc3339),
            last_failure_at: stats.last_failure_at.map(rfc3339),
        }
    }
}

/// Get a webhook's stats
///
/// Counts by status of the deliveries created from `since` (included) to
/// `until` (excluded), their success rate, and their attempts (whenever
/// made): how many, their latency, the last success and the last failure.
/// Without `since` and `until`, the last 24 hours; `until` alone, the 24 hours
/// before it; `since` alone, until now. The window is at most 31 days.
#[utoipa::path(
    get, path = "/webhooks/{groupID}/{webhookID}/stats", operation_id = "getWebhookStats", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam, StatsQuery), security(("apiKey" = [])),
    responses((status = 200, description = "The webhook's stats", body = StatsView), StatsErrors),
)]
async fn stats(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    // As the delivery log: the query is read before the path.
    let bounds = StatsQuery::read(req.query_string())?;
    let window = state
        .deliveries
        .stats_window(bounds.since, bounds.until)
        .map_err(RequestError::from)?;
    let path = WebhookPath::read(&req)?;
    let webhook = path.webhook(&caller.0, &state.webhooks).await?;
    let stats = state
        .deliveries
        .stats(&caller.0, path.group, webhook, window)
        .await?;
    Ok(HttpResponse::Ok().json(StatsView::new(webhook.as_str(), &stats)))
}

error_responses!(StatsErrors:
    DomainError::NotAllowed,
    ApiError::InvalidQuery,
    RequestError::InvalidSince,
    RequestError::InvalidUntil,
    RequestError::SinceNotBeforeUntil,
    RequestError::StatsWindowTooLong,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    DomainError::NotFound(Resource::Webhook),
    FAULT,
);
