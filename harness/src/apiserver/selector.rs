//! Label and field selectors with the apiserver's grammar.
//!
//! Label selectors (`labelSelector=`) accept, comma-separated:
//! `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist),
//! `k>n`, `k<n` (integer comparison). `!=` and `notin` match objects without the label, as in
//! Kubernetes. Keys and values are validated like the apiserver does (qualified names,
//! 63-character values).
//!
//! Field selectors (`fieldSelector=`) accept `f=v`, `f==v` and `f!=v` on `metadata.name` and
//! `metadata.namespace`, with `\` escaping `,`, `=`, `!` and `\` in values. Any other field is
//! rejected with "field label not supported", as the apiserver does for fields a resource does
//! not index.

use serde_json::{Map, Value};

/// Why a selector string was rejected. Messages name the offending requirement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text does not follow the grammar.
    #[error("unable to parse requirement {requirement:?}: {reason}")]
    Syntax {
        /// The requirement (or the remaining text) that failed.
        requirement: String,
        /// What was expected.
        reason: String,
    },
    /// A label key is not a qualified name.
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A label value is not a valid value.
    #[error("invalid label value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        /// The key it was compared with.
        key: String,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A field selector names a field the server does not index.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

impl Requirement {
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
            Requirement::GreaterThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::LessThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        }
    }
}

/// A parsed label selector: the conjunction of its requirements. Empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query value.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                if s.trim().is_empty() {
                    continue;
                }
                return Err(syntax(s, "empty requirement"));
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Self { requirements })
    }

    /// Whether labels (the object's `metadata.labels`, if any) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, object: &Value) -> bool {
        // Indexed, not `Value::pointer`, which allocates for every token: this runs for every
        // watch event.
        let labels = object.get("metadata").and_then(|m| m.get("labels"));
        self.matches(labels.and_then(Value::as_object))
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn syntax(requirement: &str, reason: &str) -> SelectorError {
    SelectorError::Syntax {
        requirement: requirement.to_string(),
        reason: reason.to_string(),
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    if let Some(rest) = part.strip_prefix('!') {
        let key = rest.trim();
        if key.is_empty() || !key.chars().all(is_key_char) {
            return Err(syntax(part, "expected a label key after '!'"));
        }
        validate_key(key)?;
        return Ok(Requirement::DoesNotExist(key.to_string()));
    }
    let key_end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
    let key = &part[..key_end];
    if key.is_empty() {
        return Err(syntax(part, "expected a label key"));
    }
    validate_key(key)?;
    let rest = part[key_end..].trim_start();
    if rest.is_empty() {
        return Ok(Requirement::Exists(key.to_string()));
    }
    let value = |v: &str| -> Result<String, SelectorError> {
        let v = v.trim();
        validate_value(key, v)?;
        Ok(v.to_string())
    };
    let number = |v: &str| -> Result<i64, SelectorError> {
        v.trim()
            .parse::<i64>()
            .map_err(|_| syntax(part, "expected an integer after '>' or '<'"))
    };
    if let Some(v) = rest.strip_prefix("==") {
        Ok(Requirement::Equals(key.to_string(), value(v)?))
    } else if let Some(v) = rest.strip_prefix("!=") {
        Ok(Requirement::NotEquals(key.to_string(), value(v)?))
    } else if let Some(v) = rest.strip_prefix('=') {
        Ok(Requirement::Equals(key.to_string(), value(v)?))
    } else if let Some(v) = rest.strip_prefix('>') {
        Ok(Requirement::GreaterThan(key.to_string(), number(v)?))
    } else if let Some(v) = rest.strip_prefix('<') {
        Ok(Requirement::LessThan(key.to_string(), number(v)?))
    } else if let Some(v) = strip_word(rest, "notin") {
        Ok(Requirement::NotIn(
            key.to_string(),
            parse_set(part, key, v)?,
        ))
    } else if let Some(v) = strip_word(rest, "in") {
        Ok(Requirement::In(key.to_string(), parse_set(part, key, v)?))
    } else {
        Err(syntax(
            part,
            "expected one of '=', '==', '!=', 'in', 'notin', '>', '<' after the key",
        ))
    }
}

/// Strips a keyword that must be followed by whitespace or '('.
fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(word)?;
    rest.starts_with(|c: char| c.is_whitespace() || c == '(')
        .then_some(rest)
}

fn parse_set(part: &str, key: &str, s: &str) -> Result<Vec<String>, SelectorError> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| syntax(part, "expected a parenthesised set of values like (a,b)"))?;
    if inner.contains(['(', ')']) {
        return Err(syntax(part, "nested parentheses in a set"));
    }
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &values {
        validate_value(key, v)?;
    }
    if inner.trim().is_empty() {
        return Err(syntax(part, "a set needs at least one value"));
    }
    Ok(values)
}

/// Checks a label name segment: at most 63 characters, alphanumeric at both ends, `-_.` inside.
fn name_segment_error(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("name part must be non-empty");
    }
    if s.len() > 63 {
        return Some("name part must be no more than 63 characters");
    }
    let ok_inner = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ends = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    (!ok_inner || !ends).then_some(
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    )
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    let err = |reason: &str| SelectorError::InvalidKey {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !ok {
                return Err(err("prefix part must be a lower-case DNS subdomain"));
            }
            name
        }
        None => key,
    };
    match name_segment_error(name) {
        Some(reason) => Err(err(reason)),
        None => Ok(()),
    }
}

fn validate_value(key: &str, value: &str) -> Result<(), SelectorError> {
    if value.is_empty() {
        return Ok(());
    }
    match name_segment_error(value) {
        Some(reason) => Err(SelectorError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.replace("name part", "value"),
        }),
        None => Ok(()),
    }
}

/// A parsed field selector. Empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// (JSON pointer of the field, value, equal?) triples.
    terms: Vec<(&'static str, String, bool)>,
}

/// The fields kube-apiserver indexes for a kind besides `metadata.name` and
/// `metadata.namespace`, with where they live in the object.
fn kind_fields(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "Event" => &[
            ("involvedObject.kind", "/involvedObject/kind"),
            ("involvedObject.namespace", "/involvedObject/namespace"),
            ("involvedObject.name", "/involvedObject/name"),
            ("involvedObject.uid", "/involvedObject/uid"),
            ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
            (
                "involvedObject.resourceVersion",
                "/involvedObject/resourceVersion",
            ),
            ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
            ("reason", "/reason"),
            ("reportingComponent", "/reportingComponent"),
            ("source", "/source/component"),
            ("type", "/type"),
        ],
        "Pod" => &[
            ("spec.nodeName", "/spec/nodeName"),
            ("spec.restartPolicy", "/spec/restartPolicy"),
            ("spec.schedulerName", "/spec/schedulerName"),
            ("spec.serviceAccountName", "/spec/serviceAccountName"),
            ("status.phase", "/status/phase"),
            ("status.podIP", "/status/podIP"),
            ("status.nominatedNodeName", "/status/nominatedNodeName"),
        ],
        "Secret" => &[("type", "/type")],
        "Namespace" => &[("status.phase", "/status/phase")],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses the `fieldSelector` query value (`metadata.name` and `metadata.namespace`).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        Self::parse_for_kind(s, "")
    }

    /// Parses the `fieldSelector` query value for objects of `kind`, which may also select on
    /// the fields kube-apiserver indexes for it (events: `involvedObject.*`, `reason`, ...).
    pub fn parse_for_kind(s: &str, kind: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self { terms });
        }
        for term in split_unescaped(s, ',') {
            let (field, op_len, equal) = find_operator(&term).ok_or_else(|| {
                syntax(
                    &term,
                    "expected a field selector like metadata.name=value, ==value or !=value",
                )
            })?;
            let name = term[..field].trim();
            let value =
                unescape(&term[field + op_len..]).map_err(|reason| syntax(&term, reason))?;
            let field = match name {
                "metadata.name" => "/metadata/name",
                "metadata.namespace" => "/metadata/namespace",
                other => kind_fields(kind)
                    .iter()
                    .find(|(f, _)| *f == other)
                    .map(|(_, pointer)| *pointer)
                    .ok_or_else(|| SelectorError::UnsupportedField(other.to_string()))?,
            };
            terms.push((field, value, equal));
        }
        Ok(Self { terms })
    }

    /// Whether the object satisfies every term.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.terms.iter().all(|(pointer, value, equal)| {
            let actual = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Splits on `sep` not preceded by a backslash escape; keeps escapes in the parts.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let cur = parts.last_mut().expect("non-empty");
        if c == '\\' {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            cur.push(c);
        }
    }
    parts
}

/// Finds the first unescaped operator: returns (index, length, is_equality).
fn find_operator(term: &str) -> Option<(usize, usize, bool)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'!' if bytes.get(i + 1) == Some(&b'=') => return Some((i, 2, false)),
            b'=' if bytes.get(i + 1) == Some(&b'=') => return Some((i, 2, true)),
            b'=' => return Some((i, 1, true)),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('\\' | ',' | '=' | '!')) => out.push(n),
                _ => return Err("invalid escape sequence: only \\\\, \\, \\= and \\! are allowed"),
            },
            '=' | ',' | '!' => return Err("unescaped '=', ',' or '!' in a value"),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn equality_and_inequality() {
        let o = obj(json!({"app": "web", "tier": "fe"}));
        assert!(sel("app=web").matches_object(&o));
        assert!(sel("app==web, tier = fe").matches_object(&o));
        assert!(!sel("app=db").matches_object(&o));
        assert!(sel("app!=db").matches_object(&o));
        assert!(
            sel("missing!=x").matches_object(&o),
            "!= matches an absent label"
        );
        assert!(!sel("app!=web").matches_object(&o));
    }

    #[test]
    fn set_based_and_existence() {
        let o = obj(json!({"env": "prod", "n": "7"}));
        assert!(sel("env in (dev, prod)").matches_object(&o));
        assert!(!sel("env in (dev)").matches_object(&o));
        assert!(sel("env notin (dev)").matches_object(&o));
        assert!(
            sel("other notin (dev)").matches_object(&o),
            "notin matches an absent label"
        );
        assert!(!sel("other in (dev)").matches_object(&o));
        assert!(sel("env").matches_object(&o));
        assert!(!sel("!env").matches_object(&o));
        assert!(sel("!other,env in (prod),n>5,n<8").matches_object(&o));
        assert!(!sel("n>7").matches_object(&o));
        assert!(sel("example.com/x notin (a)").matches(None));
        assert!(sel("").is_empty() && sel("").matches(None));
    }

    #[test]
    fn bad_selectors_name_the_requirement() {
        for (s, needle) in [
            ("app in (a", "app in (a"),
            ("app in ()", "app in ()"),
            ("app ~ x", "app ~ x"),
            ("=x", "=x"),
            ("app=web,", "app=web,"),
            ("-bad=x", "-bad"),
            ("app=-v-", "-v-"),
            ("Upper.Case/x=1", "Upper.Case/x"),
            ("n>abc", "n>abc"),
            ("!", "!"),
        ] {
            let e = LabelSelector::parse(s).expect_err(s).to_string();
            assert!(e.contains(needle), "{s:?} -> {e}");
        }
        let long = format!("k={}", "v".repeat(64));
        assert!(LabelSelector::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("63"));
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let f = |s: &str| FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert!(f("metadata.name=a").matches_object(&o));
        assert!(f("metadata.name==a,metadata.namespace=ns").matches_object(&o));
        assert!(!f("metadata.name!=a").matches_object(&o));
        assert!(f("metadata.namespace!=other").matches_object(&o));
        assert!(f("").is_empty());
        let odd = json!({"metadata": {"name": "a,b=c"}});
        assert!(f(r"metadata.name=a\,b\=c").matches_object(&odd));
        assert_eq!(
            FieldSelector::parse("spec.nodeName=x").unwrap_err(),
            SelectorError::UnsupportedField("spec.nodeName".into())
        );
        assert!(FieldSelector::parse("metadata.name")
            .unwrap_err()
            .to_string()
            .contains("metadata.name"));
        assert!(FieldSelector::parse(r"metadata.name=a\q").is_err());
    }

    #[test]
    fn events_select_on_their_involved_object_as_kubectl_describe_asks() {
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"}, "type": "Normal"});
        let f = |s: &str| FieldSelector::parse_for_kind(s, "Event").unwrap();
        assert!(f(
            "involvedObject.name=p,involvedObject.namespace=ns,involvedObject.kind=Pod,type=Normal"
        )
        .matches_object(&ev));
        assert!(!f("involvedObject.name=q").matches_object(&ev));
        assert!(FieldSelector::parse_for_kind("involvedObject.name=p", "ConfigMap").is_err());
    }
}
