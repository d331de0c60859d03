//! The Prometheus recorder behind `/metrics`. Counters and histograms are
//! recorded where things happen (requests, publications, attempts); the queue
//! gauges are read from the database at each scrape.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use webhooks_adapters_http::MetricsSource;
use webhooks_domain::{Clock, DeliveryQueue, SystemClock};

/// Seconds, from a fast HTTP answer to a delivery that waits for its timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder, installed once (tests start many applications
/// in one process).
fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics are off: cannot install the recorder");
                    None
                }
            }
        })
        .clone()
}

/// `/metrics` of this process.
pub struct PrometheusMetrics {
    handle: Option<PrometheusHandle>,
    queue: Arc<dyn DeliveryQueue>,
}

impl PrometheusMetrics {
    pub fn install(queue: Arc<dyn DeliveryQueue>) -> Self {
        Self {
            handle: handle(),
            queue,
        }
    }
}

#[async_trait]
impl MetricsSource for PrometheusMetrics {
    async fn render(&self) -> String {
        let now = SystemClock.now();
        match self.queue.depth(now).await {
            Ok(depth) => {
                metrics::gauge!("webhooks_queue_due").set(depth.due as f64);
                metrics::gauge!("webhooks_queue_scheduled").set(depth.scheduled as f64);
                let age = depth.oldest_due_at.map_or(0.0, |at| {
                    (now.as_millis() - at.as_millis()).max(0) as f64 / 1000.0
                });
                metrics::gauge!("webhooks_queue_oldest_due_age_seconds").set(age);
            }
            Err(err) => tracing::warn!(error = %err, "cannot read the queue depth for /metrics"),
        }
        self.handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default()
    }
}
