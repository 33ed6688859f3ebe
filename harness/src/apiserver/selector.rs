//! TEMPORARY stub (replaced by the real parser).
#![allow(missing_docs, dead_code)]
use serde_json::{Map, Value};
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector;
impl LabelSelector {
    pub fn parse(_s: &str) -> Result<Self, SelectorError> { Ok(Self) }
    pub fn matches(&self, _l: Option<&Map<String, Value>>) -> bool { true }
    pub fn matches_object(&self, _o: &Value) -> bool { true }
    pub fn is_empty(&self) -> bool { true }
}
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector;
impl FieldSelector {
    pub fn parse(_s: &str) -> Result<Self, SelectorError> { Ok(Self) }
    pub fn matches_object(&self, _o: &Value) -> bool { true }
    pub fn is_empty(&self) -> bool { true }
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError { #[error("bad")] Bad }
