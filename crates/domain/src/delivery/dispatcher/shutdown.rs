//! Stopping: claims still waiting go back to the queue, the deliveries in
//! flight finish, then the recorder writes what is left.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Dispatcher, LOG_TARGET};
use crate::ids::DeliveryId;

impl Dispatcher {
    /// After the last claim round: hands back what waits, waits for every
    /// slot, then tells the recorder (through `workers_done`) to finish.
    pub(super) async fn shut_down(
        &self,
        workers_done: watch::Sender<bool>,
        recorder: JoinHandle<()>,
    ) {
        // Claimed deliveries still waiting are due now for the other
        // processes; those in flight finish. Hand-offs from now on go back
        // to the queue too.
        self.stop_hand_offs();
        let waiting = self.take_waiting();
        self.release_at(&waiting, self.clock.now()).await;
        let all = u32::try_from(self.settings.workers).unwrap_or(u32::MAX);
        let _drained = self.slots.acquire_many(all).await;
        // Every worker finished: the recorder writes what is left and stops.
        let _ = workers_done.send(true);
        if let Err(err) = recorder.await {
            tracing::error!(target: LOG_TARGET, error = %err, "the attempt recorder failed; unrecorded deliveries are sent again when their leases run out");
        }
        tracing::info!(target: LOG_TARGET, "delivery workers stopped; nothing in flight");
    }

    /// Empties every endpoint's line of claimed deliveries waiting to be
    /// sent, freeing their slots.
    fn take_waiting(&self) -> Vec<DeliveryId> {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        endpoints
            .values_mut()
            .flat_map(|state| state.waiting.drain(..))
            .map(|(job, _slot)| job.delivery_id)
            .collect()
    }
}
