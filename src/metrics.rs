//! Prometheus building blocks shared by the workqueue and the controller, on top of the
//! `prometheus-client` crate: a metric family whose label sets encode in sorted order
//! (`prometheus-client`'s `Family` iterates a `HashMap`, so its output order would vary), and a
//! gauge computed when scraped (client-go's unfinished-work gauges, without a ticker task).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Label pairs, in the order they are encoded.
pub(crate) type Labels = Vec<(String, String)>;

/// A family of metrics of one type keyed by label set, encoded in label order.
pub(crate) struct OrderedFamily<M> {
    children: Arc<RwLock<BTreeMap<Labels, M>>>,
    new_child: fn() -> M,
}

impl<M> Clone for OrderedFamily<M> {
    fn clone(&self) -> Self {
        Self {
            children: self.children.clone(),
            new_child: self.new_child,
        }
    }
}

impl<M> Debug for OrderedFamily<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.children.read().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("OrderedFamily")
            .field("children", &n)
            .finish()
    }
}

impl<M: Clone> OrderedFamily<M> {
    /// An empty family whose children are made by `new_child`.
    pub(crate) fn new(new_child: fn() -> M) -> Self {
        Self {
            children: Arc::default(),
            new_child,
        }
    }

    /// The child for `labels` (created on first use). Metrics are shared handles, so the
    /// returned clone updates the family's child.
    pub(crate) fn get_or_create(&self, labels: &[(&str, &str)]) -> M {
        let key: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut children = self.children.write().expect("metric family lock");
        children
            .entry(key)
            .or_insert_with(|| (self.new_child)())
            .clone()
    }

    /// Sets the child for `labels`, replacing any previous one.
    pub(crate) fn insert(&self, labels: &[(&str, &str)], metric: M) {
        let key: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.children
            .write()
            .expect("metric family lock")
            .insert(key, metric);
    }
}

impl<M: EncodeMetric + TypedMetric> EncodeMetric for OrderedFamily<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let children = self.children.read().expect("metric family lock");
        for (labels, metric) in children.iter() {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

/// A gauge whose value is computed when it is encoded.
#[derive(Clone)]
pub(crate) struct ComputedGauge(Arc<dyn Fn() -> f64 + Send + Sync>);

impl ComputedGauge {
    /// A gauge reading `f` at each scrape.
    pub(crate) fn new(f: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// The value now.
    pub(crate) fn value(&self) -> f64 {
        (self.0)()
    }
}

impl Default for ComputedGauge {
    fn default() -> Self {
        Self::new(|| 0.0)
    }
}

impl Debug for ComputedGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ComputedGauge")
    }
}

impl TypedMetric for ComputedGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for ComputedGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.value())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn a_family_encodes_its_label_sets_in_sorted_order() {
        // Children created in reverse order come out sorted; a computed gauge reads at scrape.
        let family: OrderedFamily<Counter> = OrderedFamily::new(Counter::default);
        for name in ["c", "b", "a"] {
            family.get_or_create(&[("name", name)]).inc();
        }
        let gauges: OrderedFamily<ComputedGauge> = OrderedFamily::new(ComputedGauge::default);
        gauges.insert(&[("name", "q")], ComputedGauge::new(|| 1.5));
        let mut registry = Registry::default();
        registry.register("things", "Things.", family);
        registry.register("level", "Level.", gauges);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        let a = text.find("name=\"a\"").expect("a");
        let c = text.find("name=\"c\"").expect("c");
        assert!(a < c, "{text}");
        assert!(text.contains("things_total{name=\"a\"} 1"), "{text}");
        assert!(text.contains("level{name=\"q\"} 1.5"), "{text}");
    }
}
