//! Where in a config file a setting is: the line of a key or a section, and
//! the key of a section that is wrong on its own, so that an error found
//! after parsing (a value out of range, a grant's options without the grant)
//! names the line, as a parse error does.

use toml::de::{DeTable, DeValue};

/// The table at `path` (`[]` for the top level, `["plugins", "x"]`).
fn table<'a, 'i>(root: &'a DeTable<'i>, path: &[&str]) -> Option<&'a DeTable<'i>> {
    let mut current = root;
    for name in path {
        let (_, value) = current.iter().find(|(key, _)| key.get_ref().as_ref() == *name)?;
        match value.get_ref() {
            DeValue::Table(inner) => current = inner,
            _ => return None,
        }
    }
    Some(current)
}

fn line_at(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The line of `key` in the table at `path`.
pub fn key_line(source: &str, path: &[&str], key: &str) -> Option<usize> {
    let root = DeTable::parse(source).ok()?;
    let (found, _) = table(root.get_ref(), path)?.iter().find(|(k, _)| k.get_ref().as_ref() == key)?;
    Some(line_at(source, found.span().start))
}

/// The first key of the table at `path` that `fails` alone: `fails` gets the
/// key's own `key = value` text. With its line.
pub fn culprit(source: &str, path: &[&str], fails: impl Fn(&str) -> bool) -> Option<(String, usize)> {
    let root = DeTable::parse(source).ok()?;
    let mut keys: Vec<_> = table(root.get_ref(), path)?.iter().collect();
    keys.sort_by_key(|(key, _)| key.span().start);
    keys.into_iter().find_map(|(key, value)| {
        let text = source.get(key.span().start..value.span().end)?;
        fails(text).then(|| (key.get_ref().to_string(), line_at(source, key.span().start)))
    })
}

/// `origin` with the line of `key` in the table at `path`, where there is one.
pub fn place(origin: &str, source: Option<&str>, path: &[&str], key: &str) -> String {
    match source.and_then(|source| key_line(source, path, key)) {
        Some(line) => format!("{origin} line {line}"),
        None => origin.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "rescan_ms = 10\n\n[defaults]\nmemory_mib = 8\ncall_timeout_ms = 900\n\n[plugins.x]\ngrants = [\"docker\"]\n";

    #[test]
    fn finds_keys_and_the_key_that_fails_alone() {
        assert_eq!(key_line(FILE, &[], "rescan_ms"), Some(1));
        assert_eq!(key_line(FILE, &["defaults"], "call_timeout_ms"), Some(5));
        assert_eq!(key_line(FILE, &["plugins", "x"], "grants"), Some(8));
        assert_eq!(key_line(FILE, &["plugins", "y"], "grants"), None);
        let culprit = culprit(FILE, &["defaults"], |text| text.contains("900"));
        assert_eq!(culprit, Some(("call_timeout_ms".to_owned(), 5)));
        assert_eq!(place("f.toml", Some(FILE), &[], "rescan_ms"), "f.toml line 1");
        assert_eq!(place("flags", None, &[], "rescan_ms"), "flags");
    }
}
