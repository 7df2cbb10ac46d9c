//! The few XML lookups STS responses need: the text of a named element, unescaped.
//!
//! STS answers AssumeRole with a small fixed document; a full XML parser would be a larger
//! dependency than the twenty lines here. This reads the first `<Name>...</Name>` (no
//! attributes on it, as in every STS response) and decodes the five predefined entities and
//! numeric character references.

/// The unescaped text of the first `<name>` element in `doc`, if any.
pub(crate) fn element(doc: &str, name: &str) -> Option<String> {
    let (_, after) = doc.split_once(&format!("<{name}>"))?;
    let (inner, _) = after.split_once(&format!("</{name}>"))?;
    Some(unescape(inner.trim()))
}

/// The text of the first `<name>` element inside the first `<parent>` element.
pub(crate) fn child(doc: &str, parent: &str, name: &str) -> Option<String> {
    let (_, after) = doc.split_once(&format!("<{parent}>"))?;
    let (inner, _) = after.split_once(&format!("</{parent}>"))?;
    element(inner, name)
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        // `&` and `;` are one byte each: the entity is what lies between them.
        let entity = rest[..semi].get(1..).unwrap_or_default();
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = rest[semi..].get(1..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = rest.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_unescapes() {
        let doc = "<R><Credentials><SessionToken> a&amp;b&lt;c&#x41;&#66;&bogus </SessionToken></Credentials><Code>X</Code></R>";
        assert_eq!(
            child(doc, "Credentials", "SessionToken").as_deref(),
            Some("a&b<cAB&bogus")
        );
        assert_eq!(element(doc, "Code").as_deref(), Some("X"));
        assert_eq!(element(doc, "Missing"), None);
        assert_eq!(child(doc, "Missing", "Code"), None);
    }
}
