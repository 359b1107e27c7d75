//! CSV exports (RFC 4180): quoted where needed, CRLF line ends, and cells
//! that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR)
//! prefixed with `'`, since names and versions come from clusters.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

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
        let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let quote = formula || value.contains([',', '"', '\n', '\r']);
        if quote {
            self.text.push('"');
        }
        if formula {
            self.text.push('\'');
        }
        for c in value.chars() {
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
