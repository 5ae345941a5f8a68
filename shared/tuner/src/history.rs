//! Safe exploration's history: what the stored observations of a workflow say about which
//! configurations met QoS at which load, at what price.

use faasconf_ses::Sample;
use faasconf_store::Observation;

/// Safe exploration's history from observations: every steady window's users, actions, price
/// and QoS outcome (transient windows are left out).
pub fn safe_history<'a>(observations: impl IntoIterator<Item = &'a Observation>) -> Vec<Sample> {
    observations
        .into_iter()
        .filter(|o| !o.window.transient)
        .map(|o| Sample {
            users: o.users,
            price: o.window.config.cost(),
            actions: o.actions.clone(),
            qos_met: o.qos_met,
        })
        .collect()
}
