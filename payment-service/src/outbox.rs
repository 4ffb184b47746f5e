//! Durable webhook delivery. A delivery row is written with its payment in one transaction
//! (the outbox); it is tried at once, then by [`Outbox::run_worker`] on a backoff schedule
//! with jitter until the order service answers 2xx or the schedule runs out (`failed`, which
//! a person can retry). Pending deliveries survive restarts because they are only rows.

use crate::store::{self, DueDelivery};
use service_kit::db::{Db, StoreError, Undone};
use service_kit::domain::Id;
use service_kit::money::Cents;
use service_kit::webhook::WebhookSecret;
use shop_contracts::orders::{NoticeAnswer, OrderClient};
use shop_contracts::payments::{Captured, PaymentNotice, Refunded};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The waits between attempts: after the first attempt fails, wait the first entry, and so
/// on; when the last wait's attempt fails too, the delivery is `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// Default: ten retries over about a day.
pub const DEFAULT_SCHEDULE: &str = "10s,1m,5m,15m,30m,1h,2h,4h,8h,8h";

impl FromStr for RetrySchedule {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| humantime::parse_duration(s).map_err(|e| format!("'{s}': {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RetrySchedule(delays))
    }
}

impl RetrySchedule {
    /// The wait before the next attempt after `attempts_made` failed attempts in this round,
    /// scaled by `jitter` (0.8 to 1.2 in practice, so retries from many payments spread out);
    /// `None` when it is time to give up.
    pub fn next_delay(&self, attempts_made: u32, jitter: f64) -> Option<Duration> {
        let index = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
        self.0.get(index).map(|delay| delay.mul_f64(jitter))
    }

    /// The total number of attempts in a round.
    pub fn attempts(&self) -> usize {
        self.0.len() + 1
    }
}

/// Why a delivery was not retried by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryRefused {
    /// No delivery has this id.
    NotFound(String),
    /// It was delivered already: nothing to retry.
    Delivered(String),
}

/// Everything needed to deliver webhooks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    db: Db,
    orders: OrderClient,
    secrets: Arc<[WebhookSecret]>,
    schedule: Arc<RetrySchedule>,
    /// How long a claimed delivery is left alone before it is considered abandoned.
    lease: Duration,
    /// Where attempts are counted by result.
    counters: BusinessCounters,
    /// What is done, in the transaction that records it, when the order service refuses a
    /// notice for good because of the order (the payment service gives a capture's money
    /// back: `refunds::give_back_refused_capture`). The outbox only reports the refusal.
    on_refused: RefusedHook,
}

/// Runs in the transaction that records a notice refused for good: the delivery's id, the
/// order service's status, the journey's correlation id.
pub type RefusedHook = fn(&rusqlite::Connection, &str, u16, Option<&str>) -> Result<(), StoreError>;

use service_kit::clock::unix_now_ms as now_ms;
use service_kit::metrics::BusinessCounters;

impl Outbox {
    /// An outbox over `db`, delivering through `orders`, running `on_refused` on a notice
    /// refused for good (there is no default: whoever builds an outbox says what happens to
    /// the money of a refused capture).
    pub fn new(
        db: Db,
        orders: OrderClient,
        secrets: Vec<WebhookSecret>,
        schedule: RetrySchedule,
        peer_timeout: Duration,
        on_refused: RefusedHook,
    ) -> Self {
        Outbox {
            db,
            orders,
            secrets: secrets.into(),
            schedule: Arc::new(schedule),
            lease: peer_timeout + Duration::from_secs(5),
            counters: BusinessCounters::default(),
            on_refused,
        }
    }

    /// The same outbox, counting its attempts by result in `counters`.
    pub fn counting(mut self, counters: BusinessCounters) -> Self {
        self.counters = counters;
        self
    }

    /// A new delivery announcing that `payment_id` paid `amount` for `order_id` (whose
    /// global reference is `order_ref`): a fresh webhook id, the exact body that will be
    /// signed, and the current journey's id.
    pub fn new_delivery(
        payment_id: i64,
        order_id: Id,
        order_ref: Option<String>,
        amount: Cents,
    ) -> DueDelivery {
        let notice = PaymentNotice::Succeeded(Captured {
            payment_id,
            order_id: order_id.get(),
            order_ref,
            amount,
        });
        Self::delivery_of(&notice)
    }

    /// A new delivery announcing refund `refund_id` of the payment `(payment id, order id,
    /// order ref)`: `amount` given back, `refunded_total` in all so far, and whether the
    /// goods came back.
    pub fn new_refund_delivery(
        payment: (i64, i64, Option<String>),
        refund_id: i64,
        (amount, refunded_total): (Cents, Cents),
        restock: bool,
    ) -> DueDelivery {
        let (payment_id, order_id, order_ref) = payment;
        let notice = PaymentNotice::Refunded(Refunded {
            payment_id,
            order_id,
            order_ref,
            amount,
            refund_id,
            refunded_total,
            restock,
        });
        Self::delivery_of(&notice)
    }

    fn delivery_of(notice: &PaymentNotice) -> DueDelivery {
        let id = format!(
            "msg_{}",
            std::iter::repeat_with(fastrand::alphanumeric)
                .take(24)
                .collect::<String>()
        );
        // A struct of integers and strings: serializing it cannot fail.
        let payload = serde_json::to_string(notice).unwrap_or_default();
        DueDelivery {
            id,
            order_id: notice.order_id(),
            payload,
            correlation_id: service_kit::context::correlation_id(),
        }
    }

    /// Writes `delivery` (announcing a payment, or one of its refunds) inside the caller's
    /// transaction, claimed for an immediate attempt.
    pub fn enqueue(
        &self,
        tx: &rusqlite::Connection,
        delivery: &DueDelivery,
        subject: (i64, Option<i64>),
    ) -> rusqlite::Result<()> {
        let now = now_ms();
        store::insert_delivery(tx, delivery, subject, now, self.lease_ends(now))
    }

    /// When a claim made at `now` (Unix ms) lapses.
    fn lease_ends(&self, now: i64) -> i64 {
        now.saturating_add(service_kit::clock::millis(self.lease))
    }

    /// Makes one attempt and records it. Returns whether it was delivered.
    pub async fn attempt(&self, delivery: DueDelivery) -> Result<bool, StoreError> {
        let started = Instant::now();
        let result = self
            .orders
            .send_notice(
                (&delivery.id, delivery.order_id),
                delivery.payload.as_bytes(),
                delivery.correlation_id.as_deref(),
                &self.secrets,
            )
            .await;
        let duration_ms = service_kit::clock::millis(started.elapsed());
        let (status_code, error) = match &result {
            Ok(code) => (Some(*code), None),
            Err(err) => (None, Some(err.to_string())),
        };
        let answer = status_code.map(NoticeAnswer::of);
        let delivered = answer == Some(NoticeAnswer::Accepted);
        // A refusal is an answer: asking again would get the same one.
        let refused = answer.filter(|a| a.is_final() && !delivered);
        let schedule = self.schedule.clone();
        let id = delivery.id.clone();
        let correlation = delivery.correlation_id.clone();
        let on_refused = self.on_refused;
        let outcome = self
            .db
            .write(move |tx| {
                let attempts =
                    store::record_attempt(tx, &id, status_code, error.as_deref(), duration_ms)?;
                if delivered {
                    store::mark_delivered(tx, &id)?;
                    return Ok(None);
                }
                let code = status_code.unwrap_or(0);
                let reason = error.unwrap_or_else(|| match answer {
                    Some(NoticeAnswer::SecretOrKeyRefused) => format!(
                        "order service answered HTTP {code}: check the webhook secret \
                         (WEBHOOK_SECRET) and the key are the same on both services"
                    ),
                    _ => format!("order service answered HTTP {code}"),
                });
                let next = match refused {
                    Some(_) => None,
                    None => schedule
                        .next_delay(attempts, 0.8 + 0.4 * fastrand::f64())
                        .map(service_kit::clock::unix_ms_after),
                };
                store::mark_undelivered(tx, &id, &reason, next)?;
                if refused == Some(NoticeAnswer::RefusedForGood) {
                    on_refused(tx, &id, code, correlation.as_deref())?;
                }
                Ok(Some((reason, next.is_none())))
            })
            .await?;
        let result = match (&outcome, refused) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "refused",
            (Some((_, true)), None) => "failed",
            (Some((_, false)), None) => "retrying",
        };
        self.counters
            .inc("webhook_deliveries", &[("result", result)]);
        if let Some((reason, gave_up)) = outcome {
            if gave_up {
                tracing::error!(delivery = %delivery.id, %reason, "webhook delivery failed for good; retry it by hand");
            } else {
                tracing::warn!(delivery = %delivery.id, %reason, "webhook delivery failed; will retry");
            }
        }
        Ok(delivered)
    }

    /// The first attempt of a delivery just enqueued (a capture's or a refund's). If it
    /// cannot even be recorded, the delivery is on record and claimed only for a short
    /// lease: the worker takes it.
    pub async fn attempt_first(&self, delivery: DueDelivery) {
        let id = delivery.id.clone();
        if let Err(err) = self.attempt(delivery).await {
            tracing::error!(delivery = %id, error = %err, "first webhook attempt could not be recorded");
        }
    }

    /// Starts a fresh round for a delivery that is not yet delivered and attempts it now.
    pub async fn retry_now(&self, delivery_id: String) -> Result<bool, Undone<RetryRefused>> {
        let claimed_until = self.lease_ends(now_ms());
        let id = delivery_id.clone();
        let Some((status, due)) = self
            .db
            .write(move |tx| Ok(store::rearm(tx, &id, claimed_until)?))
            .await?
        else {
            return Err(Undone::Refused(RetryRefused::NotFound(format!(
                "delivery {delivery_id} not found"
            ))));
        };
        if status == "delivered" {
            return Err(Undone::Refused(RetryRefused::Delivered(format!(
                "delivery {delivery_id} was already delivered"
            ))));
        }
        Ok(self.attempt(due).await?)
    }

    /// Attempts due deliveries every `poll` until `cancel` fires; attempts under way then
    /// are finished before it returns.
    pub async fn run_worker(self, poll: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(poll) => {}
            }
            let now = now_ms();
            let claimed_until = self.lease_ends(now);
            let due = self
                .db
                .write(move |tx| Ok(store::claim_due(tx, now, claimed_until, 32)?))
                .await;
            let due = match due {
                Ok(due) => due,
                Err(err) => {
                    tracing::error!(error = %err, "webhook worker could not read the outbox");
                    continue;
                }
            };
            let mut attempts = tokio::task::JoinSet::new();
            for delivery in due {
                let outbox = self.clone();
                attempts.spawn(async move { outbox.attempt(delivery).await });
            }
            while let Some(done) = attempts.join_next().await {
                if let Ok(Err(err)) = done {
                    tracing::error!(error = %err, "webhook attempt could not be recorded");
                }
            }
        }
        tracing::info!("webhook worker stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spreads_attempts_over_about_a_day() {
        let schedule: RetrySchedule = DEFAULT_SCHEDULE.parse().unwrap();
        let total: Duration = schedule.0.iter().sum();
        assert!(total > Duration::from_secs(20 * 3600), "{total:?}");
        assert!(total < Duration::from_secs(28 * 3600), "{total:?}");
        assert_eq!(schedule.attempts(), 11);
    }

    #[test]
    fn each_failed_attempt_waits_the_next_delay_then_gives_up() {
        let schedule: RetrySchedule = "10ms, 1s, 2m".parse().unwrap();
        assert_eq!(schedule.next_delay(0, 1.0), None, "no attempt made yet");
        assert_eq!(schedule.next_delay(1, 1.0), Some(Duration::from_millis(10)));
        assert_eq!(schedule.next_delay(2, 1.0), Some(Duration::from_secs(1)));
        assert_eq!(schedule.next_delay(3, 1.0), Some(Duration::from_secs(120)));
        assert_eq!(
            schedule.next_delay(4, 1.0),
            None,
            "the fourth failure is final"
        );
    }

    #[test]
    fn jitter_scales_the_delay() {
        let schedule: RetrySchedule = "10s".parse().unwrap();
        assert_eq!(schedule.next_delay(1, 0.8), Some(Duration::from_secs(8)));
        assert_eq!(schedule.next_delay(1, 1.2), Some(Duration::from_secs(12)));
    }

    #[test]
    fn a_bad_schedule_is_refused() {
        assert!("10s,soon".parse::<RetrySchedule>().is_err());
    }

    #[test]
    fn a_delivery_body_names_the_payment_and_never_a_card() {
        let order_ref = Some("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_string());
        let delivery = Outbox::new_delivery(7, Id::from_db(3), order_ref, Cents::new(99_999));
        let body: serde_json::Value = serde_json::from_str(&delivery.payload).unwrap();
        assert_eq!(body["type"], "payment.succeeded");
        assert_eq!(body["data"]["payment_id"], 7);
        assert_eq!(body["data"]["order_id"], 3);
        assert_eq!(
            body["data"]["order_ref"],
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        );
        assert_eq!(body["data"]["amount"], serde_json::json!(999.99));
        assert!(delivery.id.starts_with("msg_") && delivery.id.len() == 28);
        assert_ne!(
            delivery.id,
            Outbox::new_delivery(7, Id::from_db(3), None, Cents::new(1)).id
        );
    }
}
