//! `GetJobStats`: an HRA's job ledger figures, with its trigger duration and the advice.

use super::{convert, error::ApiError, pb, peers::Destination, service::BatchScalerService};
use crate::domain::{hra::HraKey, ledger::advise};

impl BatchScalerService {
    /// The figures of `key`'s job ledger (`NOT_FOUND` for an HRA the backend does not hold),
    /// from its owner, which keeps it; `forwarded`: asked by another replica, answered here.
    pub(super) async fn job_stats(
        &self,
        key: HraKey,
        forwarded: bool,
    ) -> Result<pb::JobStats, ApiError> {
        if let Some(peers) = self.peers.as_ref().filter(|_| !forwarded)
            && let Destination::Owner(link) = peers.destination(&key)
        {
            let target = pb::TargetRef {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            };
            return link
                .job_stats(target)
                .await
                .map_err(|status| ApiError::Owner {
                    code: status.code() as u32,
                    message: format!(
                        "from the HRA's owner {}: {}",
                        link.address,
                        status.message()
                    ),
                });
        }
        let hra = self.store.get(&key).await?;
        let figures = self.engine.ledgers.figures(&key);
        let advice = advise(&figures, hra.reservation_life(self.default_life));
        Ok(convert::job_stats(
            &key,
            &figures,
            hra.trigger_duration,
            &advice,
        ))
    }
}
