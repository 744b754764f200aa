//! A hook's deliveries as the REST API lists them, and which of them to recover: a
//! `workflow_job` delivery that got no 2xx answer, whose `guid` no other delivery (a manual
//! redelivery) answered with one, taken once. The ledger remembers, per hook, the newest
//! delivery looked at, the guids settled (answered, or recovered here), and the failed ones
//! not recovered yet (their fetch failed or waits for budget).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The only event recovered.
pub const WORKFLOW_JOB: &str = "workflow_job";

/// Most failed deliveries kept waiting for their fetch (oldest dropped beyond, counted).
pub const MAX_BACKLOG: usize = 10_000;

/// One entry of a hook's deliveries list (`GET …/deliveries`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DeliverySummary {
    /// Delivery id, growing with time.
    pub id: u64,
    /// `X-GitHub-Delivery`: shared by a delivery and its redeliveries.
    pub guid: String,
    /// When it was delivered.
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// True for a redelivery.
    #[serde(default)]
    pub redelivery: bool,
    /// The receiver's HTTP status (0: no answer).
    #[serde(default)]
    pub status_code: Option<i64>,
    /// The event (`workflow_job`, `ping`, …).
    #[serde(default)]
    pub event: String,
    /// The event's action.
    #[serde(default)]
    pub action: Option<String>,
}

impl DeliverySummary {
    /// True if the receiver answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// What a poll of one hook should do with a page it fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// Fetch the next page (if the list has one).
    More,
    /// This page reached deliveries already looked at (or older than the look-back).
    Done,
}

/// One hook's memory of its deliveries.
#[derive(Clone, Debug, Default)]
pub struct DeliveryLedger {
    /// The newest delivery id looked at.
    last_seen: Option<u64>,
    /// Guids answered 2xx or recovered here, with when their delivery happened.
    settled: HashMap<String, DateTime<Utc>>,
    /// Failed deliveries to recover, by id (oldest first), not yet done.
    backlog: BTreeMap<u64, DeliverySummary>,
    /// Deliveries of the poll in progress.
    polled: Vec<DeliverySummary>,
}

impl DeliveryLedger {
    /// True if `d` is new to this ledger and not older than `horizon`.
    fn wanted(&self, d: &DeliverySummary, horizon: DateTime<Utc>) -> bool {
        self.last_seen.is_none_or(|seen| d.id > seen)
            && d.delivered_at.is_none_or(|at| at >= horizon)
    }

    /// Takes one page of a poll (newest first); says whether older pages are still wanted.
    pub fn page(&mut self, page: Vec<DeliverySummary>, horizon: DateTime<Utc>) -> Paging {
        let reached_end = page.is_empty() || page.iter().any(|d| !self.wanted(d, horizon));
        let wanted: Vec<DeliverySummary> = page
            .into_iter()
            .filter(|d| self.wanted(d, horizon))
            .collect();
        self.polled.extend(wanted);
        if reached_end {
            Paging::Done
        } else {
            Paging::More
        }
    }

    /// Ends a poll: notes every answered guid, and returns the deliveries to recover now,
    /// oldest first (this poll's failures and earlier ones not done yet). Guids settled
    /// before `forget_before` are forgotten, and with them old failures never recovered.
    /// Returns also how many failures were dropped because the backlog was full.
    pub fn finish_poll(&mut self, forget_before: DateTime<Utc>) -> (Vec<DeliverySummary>, u64) {
        let polled = std::mem::take(&mut self.polled);
        if let Some(newest) = polled.iter().map(|d| d.id).max() {
            self.last_seen = Some(self.last_seen.map_or(newest, |s| s.max(newest)));
        }
        let jobs: Vec<DeliverySummary> = polled
            .into_iter()
            .filter(|d| d.event == WORKFLOW_JOB)
            .collect();
        for d in jobs.iter().filter(|d| d.succeeded()) {
            let at = d.delivered_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
            self.settled.insert(d.guid.clone(), at);
        }
        for d in jobs.into_iter().filter(|d| !d.succeeded()) {
            self.backlog.insert(d.id, d);
        }
        let settled = &self.settled;
        self.backlog.retain(|_, d| {
            !settled.contains_key(&d.guid) && d.delivered_at.is_none_or(|at| at >= forget_before)
        });
        self.settled.retain(|_, at| *at >= forget_before);
        let mut dropped = 0;
        while self.backlog.len() > MAX_BACKLOG {
            self.backlog.pop_first();
            dropped += 1;
        }
        // One entry per guid: the oldest failed delivery of it.
        let mut seen = std::collections::HashSet::new();
        let due = self
            .backlog
            .values()
            .filter(|d| seen.insert(d.guid.clone()))
            .cloned()
            .collect();
        (due, dropped)
    }

    /// `d` was handled (recovered, found a duplicate, or not worth trying again): its guid
    /// is settled.
    pub fn done(&mut self, d: &DeliverySummary) {
        let guid = &d.guid;
        self.backlog.retain(|_, b| &b.guid != guid);
        let at = d.delivered_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.settled.insert(guid.clone(), at);
    }

    /// Drops what a poll that could not reach its end (budget, rate limit, an error) has read,
    /// so that the next poll reads those pages again instead of skipping what lay beyond them.
    pub fn abort_poll(&mut self) {
        self.polled.clear();
    }

    /// Failed deliveries waiting to be recovered.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }
}

/// How far back settled guids are remembered: twice the look-back, so that a redelivery of
/// a delivery recovered near the horizon still finds it.
pub fn forget_before(now: DateTime<Utc>, lookback: TimeDelta) -> DateTime<Utc> {
    let twice = lookback.checked_mul(2).unwrap_or(TimeDelta::MAX);
    now.checked_sub_signed(twice)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn d(id: u64, guid: &str, code: i64, at: i64) -> DeliverySummary {
        DeliverySummary {
            id,
            guid: guid.into(),
            delivered_at: Some(t(at)),
            redelivery: false,
            status_code: Some(code),
            event: WORKFLOW_JOB.into(),
            action: Some("queued".into()),
        }
    }

    fn ids(list: &[DeliverySummary]) -> Vec<u64> {
        list.iter().map(|d| d.id).collect()
    }

    #[test]
    fn recovers_failed_workflow_jobs_whose_guid_never_succeeded_oldest_first() {
        let mut ledger = DeliveryLedger::default();
        let mut ping = d(6, "p", 500, 6);
        ping.event = "ping".into();
        let page = vec![
            ping,
            d(5, "c", 200, 5), // a manual redelivery of c, answered
            d(4, "b", 0, 4),   // no answer at all
            d(3, "c", 502, 3),
            d(2, "a", 503, 2),
            d(1, "z", 200, 1),
        ];
        assert_eq!(ledger.page(page, t(0)), Paging::More);
        assert_eq!(ledger.page(vec![], t(0)), Paging::Done);
        let (due, dropped) = ledger.finish_poll(t(-100));
        assert_eq!((ids(&due), dropped), (vec![2, 4], 0));
        ledger.done(&due[0]);
        // The next poll sees only newer deliveries; b is still due until done.
        let newer = vec![d(8, "e", 504, 8), d(7, "a", 500, 7), d(6, "p", 500, 6)];
        assert_eq!(ledger.page(newer, t(0)), Paging::Done);
        let (due, _) = ledger.finish_poll(t(-100));
        assert_eq!(ids(&due), vec![4, 8], "a's guid was recovered already");
    }

    #[test]
    fn a_later_success_for_the_guid_settles_a_failure_still_waiting() {
        let mut ledger = DeliveryLedger::default();
        ledger.page(vec![d(1, "a", 500, 1)], t(0));
        assert_eq!(ids(&ledger.finish_poll(t(-100)).0), vec![1]);
        // Not done (its fetch failed); then the operator redelivered it by hand.
        ledger.page(vec![d(2, "a", 200, 2)], t(0));
        assert!(ledger.finish_poll(t(-100)).0.is_empty());
        assert_eq!(ledger.backlog(), 0);
    }

    #[test]
    fn the_first_poll_looks_back_only_to_the_horizon() {
        let mut ledger = DeliveryLedger::default();
        let page = vec![d(3, "c", 500, 30), d(2, "b", 500, 20), d(1, "a", 500, 10)];
        assert_eq!(ledger.page(page, t(15)), Paging::Done);
        assert_eq!(ids(&ledger.finish_poll(t(-100)).0), vec![2, 3]);
    }

    #[test]
    fn old_failures_and_guids_are_forgotten() {
        let mut ledger = DeliveryLedger::default();
        ledger.page(vec![d(2, "b", 200, 20), d(1, "a", 500, 10)], t(0));
        assert_eq!(ids(&ledger.finish_poll(t(0)).0), vec![1]);
        ledger.page(vec![], t(0));
        assert!(ledger.finish_poll(t(15)).0.is_empty());
        assert_eq!(ledger.settled.len(), 1);
        ledger.finish_poll(t(25));
        assert!(ledger.settled.is_empty());
    }

    #[test]
    fn the_backlog_is_bounded() {
        let mut ledger = DeliveryLedger::default();
        let page: Vec<_> = (1..=(MAX_BACKLOG as u64 + 5))
            .rev()
            .map(|i| d(i, &format!("g{i}"), 500, 10))
            .collect();
        ledger.page(page, t(0));
        let (due, dropped) = ledger.finish_poll(t(0));
        assert_eq!((due.len(), dropped), (MAX_BACKLOG, 5));
        assert_eq!(due[0].id, 6);
    }

    #[test]
    fn parses_a_list_entry_as_github_sends_it() {
        let json = r#"{"id":42,"guid":"58474f00-b361-11eb-836d-0e4f3503ccbe",
            "delivered_at":"2021-05-12T20:33:44Z","redelivery":false,"duration":0.03,
            "status":"failed to connect","status_code":502,"event":"workflow_job",
            "action":"queued","installation_id":123,"repository_id":123,"throttled_at":null}"#;
        let d: DeliverySummary = serde_json::from_str(json).unwrap();
        assert_eq!((d.id, d.status_code, d.succeeded()), (42, Some(502), false));
        assert_eq!(
            d.delivered_at.unwrap().to_rfc3339(),
            "2021-05-12T20:33:44+00:00"
        );
    }
}
