//! `GetJobStats`: an HRA's job ledger figures, with its trigger duration and the advice.

use super::{convert, error::ApiError, pb, service::BatchScalerService};
use crate::domain::{hra::HraKey, ledger::advise};

impl BatchScalerService {
    /// The figures of `key`'s job ledger (`NOT_FOUND` for an HRA the backend does not hold).
    pub(super) async fn job_stats(&self, key: HraKey) -> Result<pb::JobStats, ApiError> {
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
