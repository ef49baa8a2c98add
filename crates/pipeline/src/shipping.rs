//! Every event to the configured sinks too: the local `events.jsonl` is
//! written first (by [`crate::events::EventLog`]), then the event is handed
//! to [`sealcraft_sinks::Shipper`], then to the reporter behind it.

use sealcraft_sinks::{Record, Shipper};

use crate::events::{Event, Reporter};

/// A reporter that ships every event to the sinks, then passes it on.
pub struct ShippingReporter<'a> {
    shipper: &'a Shipper,
    inner: &'a dyn Reporter,
}

impl<'a> ShippingReporter<'a> {
    /// Ships through `shipper`, then reports to `inner`.
    pub fn new(shipper: &'a Shipper, inner: &'a dyn Reporter) -> Self {
        Self { shipper, inner }
    }
}

impl Reporter for ShippingReporter<'_> {
    fn event(&self, event: &Event) {
        // An event that cannot become JSON is still reported locally.
        if let Ok(value) = serde_json::to_value(event) {
            self.shipper.ship(&Record {
                time: &event.time,
                stage: &event.stage,
                event: &value,
            });
        }
        self.inner.event(event);
    }
}
