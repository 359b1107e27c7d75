//! CSV exports (RFC 4180): quoted where needed, CRLF line ends, and cells
//! that a spreadsheet would run as a formula defused with a `'` wherever
//! one could start (see [`defuse`]), since names and versions come from
//! clusters.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use shared::model::HistoryEvent;

use crate::compare::{self, Difference};
use crate::matrix::{Flags, Row};
use crate::policies::{Outcome, ReportLine};

/// A matrix: a row per service, its versions per column (environment),
/// and its flags.
pub fn matrix<'a>(
    filename: String,
    columns: impl Iterator<Item = &'a str>,
    rows: impl IntoIterator<Item = (&'a Row, Flags)>,
) -> Csv {
    let mut header = vec!["service"];
    header.extend(columns);
    header.push("flags");
    let mut csv = Csv::new(filename, &header);
    for (row, flags) in rows {
        let mut cells: Vec<String> = vec![row.service.clone()];
        cells.extend(
            row.cells.iter().map(|c| c.as_ref().map(|c| c.versions.join(" ")).unwrap_or_default()),
        );
        cells.push(flags.names());
        csv.row(cells.iter().map(String::as_str));
    }
    csv
}

/// A policy report: a line per service, rule and column pair (or column).
pub fn policies(filename: String, lines: impl IntoIterator<Item = ReportLine>) -> Csv {
    let header = ["service", "rule", "from", "to", "result", "reason", "since"];
    let mut csv = Csv::new(filename, &header);
    for line in lines {
        let j = &line.judgement;
        let result = match j.result {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        };
        let since = j.since.map(|t| t.to_string()).unwrap_or_default();
        let from = j.from.as_deref().unwrap_or_default();
        csv.row([line.service.as_str(), j.rule.name(), from, &j.to, result, &j.reason, &since]);
    }
    csv
}

/// Two columns compared: a row per service.
pub fn comparison(
    filename: String,
    from: &str,
    to: &str,
    differences: impl IntoIterator<Item = Difference>,
) -> Csv {
    let mut csv = Csv::new(filename, &["service", "standing", "basis", from, to, "since"]);
    for d in differences {
        let side = |s: &Option<compare::Side>| {
            s.as_ref().map(|s| s.versions.join(" ")).unwrap_or_default()
        };
        let basis = match d.basis {
            Some(compare::Basis::SemanticVersion) => "semanticVersion",
            Some(compare::Basis::DeploymentTime) => "deploymentTime",
            None => "",
        };
        let since = d.since.map(|t| t.to_string()).unwrap_or_default();
        csv.row([
            d.service.as_str(),
            d.standing.as_str(),
            basis,
            &side(&d.from),
            &side(&d.to),
            &since,
        ]);
    }
    csv
}

/// A page of history events.
pub fn history(events: &[HistoryEvent]) -> Csv {
    let mut csv = Csv::new(
        "history.csv",
        &[
            "at",
            "change",
            "service",
            "environment",
            "cluster",
            "namespace",
            "kind",
            "name",
            "fromVersion",
            "toVersion",
        ],
    );
    for e in events {
        let change = match e.change {
            shared::model::Change::Added => "added",
            shared::model::Change::Changed => "changed",
            shared::model::Change::Removed => "removed",
        };
        csv.row([
            e.at.to_string().as_str(),
            change,
            &e.service,
            e.environment.as_str(),
            e.cluster.as_str(),
            &e.namespace,
            e.kind.as_str(),
            &e.name,
            e.from_version.as_deref().unwrap_or(""),
            e.to_version.as_deref().unwrap_or(""),
        ]);
    }
    csv
}

pub struct Csv {
    filename: String,
    text: String,
}

impl Csv {
    pub fn new(filename: impl Into<String>, header: &[&str]) -> Self {
        let mut csv = Self { filename: filename.into(), text: String::new() };
        csv.row(header.iter().copied());
        csv
    }

    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.cell(cell);
        }
        self.text.push_str("\r\n");
    }

    fn cell(&mut self, value: &str) {
        let defused = defuse(value);
        let quote = defused.len() != value.len() || value.contains([',', '"', '\n', '\r']);
        if quote {
            self.text.push('"');
        }
        for c in defused.chars() {
            if c == '"' {
                self.text.push('"');
            }
            self.text.push(c);
        }
        if quote {
            self.text.push('"');
        }
    }
}

/// `value` with a `'` before every place a spreadsheet could start a
/// formula (OWASP, CSV injection): a formula sign (`=`, `+`, `-`, `@`, or
/// their full-width forms) at the start, or after a space, a separator a
/// locale or an import may split cells on (`,`, `;`, `|`, tab), or a line
/// break; and a leading tab or CR.
fn defuse(value: &str) -> String {
    const SIGNS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];
    const BOUNDARIES: [char; 8] = [' ', ',', ';', '|', '\t', '\r', '\n', '\u{3000}'];
    let mut out = String::with_capacity(value.len());
    if value.starts_with(['\t', '\r']) {
        out.push('\'');
    }
    let mut at_boundary = true;
    for c in value.chars() {
        if at_boundary && SIGNS.contains(&c) {
            out.push('\'');
        }
        at_boundary = BOUNDARIES.contains(&c);
        out.push(c);
    }
    out
}

impl IntoResponse for Csv {
    fn into_response(self) -> Response {
        let disposition =
            HeaderValue::from_str(&format!("attachment; filename=\"{}\"", self.filename))
                .unwrap_or(HeaderValue::from_static("attachment"));
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            self.text,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_after_separators_spaces_line_breaks_and_in_full_width_are_defused() {
        let cases = [
            (";=1+1", ";'=1+1"),
            (" =1+1", " '=1+1"),
            ("＝1+1", "'＝1+1"),
            ("ok\n=1+1", "ok\n'=1+1"),
            ("a,@SUM(A1)", "a,'@SUM(A1)"),
            ("x|+1", "x|'+1"),
            ("\tx", "'\tx"),
            ("1.2.3-rc.1", "1.2.3-rc.1"),
            ("a=b", "a=b"),
            ("payments-api", "payments-api"),
        ];
        for (value, expected) in cases {
            assert_eq!(defuse(value), expected, "{value:?}");
        }
        let mut csv = Csv::new("x.csv", &["a"]);
        csv.row([" =cmd"]);
        assert_eq!(csv.text, "a\r\n\" '=cmd\"\r\n", "a defused cell is quoted");
    }

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        let mut csv = Csv::new("x.csv", &["a", "b"]);
        csv.row(["plain", "with,comma"]);
        csv.row(["say \"hi\"", "=HYPERLINK(\"x\")"]);
        csv.row(["-1", "line\nbreak"]);
        assert_eq!(
            csv.text,
            "a,b\r\nplain,\"with,comma\"\r\n\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\"\r\n\"'-1\",\"line\nbreak\"\r\n"
        );
    }
}
