//! Admin command output: Exchange's `Format-List` / `Format-Table` look, or JSON.
//!
//! Every result is first a JSON value (objects keep their key order), so the three outputs
//! always show the same data. Booleans print as `True`/`False` and lists as `{a, b}`, as in
//! Exchange Management Shell; JSON keeps real booleans, numbers and arrays.

use std::fmt::Write as _;

use serde_json::Value;

/// How to print a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `Format-List`: one `Name : Value` line per property, records separated by a blank line.
    List,
    /// `Format-Table`: one row per record, columns sized to fit.
    Table,
    /// JSON: an object for one record, an array for several.
    Json,
}

/// One value as Exchange Management Shell prints it.
pub fn display_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(display_value).collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", display_value(v)))
                .collect();
            format!("@{{{}}}", inner.join("; "))
        }
    }
}

/// `records` as a list: `Name : Value`, names padded to the longest.
pub fn list(records: &[Value]) -> String {
    let mut out = String::new();
    for record in records {
        let Some(map) = record.as_object() else {
            let _ = writeln!(out, "{}", display_value(record));
            continue;
        };
        let width = map.keys().map(String::len).max().unwrap_or(0);
        out.push('\n');
        for (k, v) in map {
            let _ = writeln!(out, "{k:<width$} : {}", display_value(v));
        }
    }
    out.push('\n');
    out
}

/// `records` as a table with the given columns (all keys of the first record when empty).
pub fn table(records: &[Value], columns: &[&str]) -> String {
    let columns: Vec<String> = if columns.is_empty() {
        records
            .first()
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        columns.iter().map(|c| (*c).to_owned()).collect()
    };
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r.get(c).map(display_value).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::from("\n");
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join(" ").trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(columns.clone()));
    let _ = writeln!(
        out,
        "{}",
        line(widths.iter().map(|w| "-".repeat(*w)).collect())
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
    out.push('\n');
    out
}

/// Renders `records` in `format`; `single` prints a lone record as a JSON object.
pub fn render(records: &[Value], format: Format, columns: &[&str], single: bool) -> String {
    match format {
        Format::List => list(records),
        Format::Table => table(records, columns),
        Format::Json => {
            let value = match records {
                [one] if single => one.clone(),
                many => Value::Array(many.to_vec()),
            };
            let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn exchange_look() {
        let records = vec![
            json!({"Name": "alice", "PopEnabled": false, "Ranges": ["a", "b"], "Max": 10}),
            json!({"Name": "bob", "PopEnabled": true, "Ranges": [], "Max": null}),
        ];
        let t = table(&records, &["Name", "PopEnabled", "Ranges"]);
        assert_eq!(
            t,
            "\nName  PopEnabled Ranges\n----- ---------- ------\nalice False      {a, b}\nbob   True       {}\n\n"
        );
        let l = list(&records[..1]);
        assert_eq!(
            l,
            "\nName       : alice\nPopEnabled : False\nRanges     : {a, b}\nMax        : 10\n\n"
        );
        let j = render(&records[..1], Format::Json, &[], true);
        assert!(j.starts_with("{\n  \"Name\": \"alice\""));
        assert!(render(&records, Format::Json, &[], true).starts_with('['));
    }
}
