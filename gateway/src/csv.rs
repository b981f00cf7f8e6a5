//! A small CSV reader for registry and GHG-inventory exports: a header row,
//! comma-separated fields, optional double quotes (with `""` for a quote).

/// One data row: its 1-based line number and fields by header name.
#[derive(Debug, Clone)]
pub struct Row {
    /// Line number in the file.
    pub line: usize,
    fields: Vec<String>,
}

impl Row {
    /// The field in column `index`.
    #[must_use]
    pub fn field(&self, index: usize) -> &str {
        self.fields.get(index).map_or("", |s| s.trim())
    }
}

/// Splits one line into fields; `Err` for an unterminated quote.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".to_string());
    }
    fields.push(field);
    Ok(fields)
}

/// An error about `field` (empty: the whole row) on `line` of `file`.
#[must_use]
pub fn error(
    file: &std::path::Path,
    line: usize,
    field: &str,
    message: String,
) -> crate::values::LoadError {
    crate::values::LoadError {
        file: file.to_path_buf(),
        location: if field.is_empty() {
            format!("line {line}")
        } else {
            format!("line {line}: {field}")
        },
        message,
    }
}

/// Reads a CSV file with exactly `columns`, errors naming the file and line.
pub fn read(
    file: &std::path::Path,
    columns: &[&str],
) -> Result<Vec<Row>, crate::values::LoadError> {
    let text = std::fs::read_to_string(file).map_err(|e| crate::values::LoadError {
        file: file.to_path_buf(),
        location: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, columns).map_err(|(line, message)| error(file, line, "", message))
}

/// Parses a file's text: checks the header has exactly `columns` (in that
/// order) and returns the data rows. Blank lines are skipped. Errors are
/// `(line, message)`.
pub fn parse(text: &str, columns: &[&str]) -> Result<Vec<Row>, (usize, String)> {
    parse_with_optional(text, columns, &[]).map(|(rows, _)| rows)
}

/// The rows of a file, and where each optional column is (`None`: absent).
pub type Parsed = (Vec<Row>, Vec<Option<usize>>);

/// [`parse`] of a header that is `columns` followed by any of `optional`
/// (each at most once, in any order); also returns each optional column's
/// index, `None` where the file does not have it.
pub fn parse_with_optional(
    text: &str,
    columns: &[&str],
    optional: &[&str],
) -> Result<Parsed, (usize, String)> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_index, header)) = lines.next() else {
        return Err((
            1,
            format!("empty file: expected the header {}", columns.join(",")),
        ));
    };
    let header: Vec<String> = split(header.trim_end_matches('\r'))
        .map_err(|e| (header_index + 1, e))?
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    let extra = header.get(columns.len()..).unwrap_or_default();
    let known_extra = extra
        .iter()
        .enumerate()
        .all(|(i, h)| optional.contains(&h.as_str()) && !extra[..i].contains(h));
    if header.len() < columns.len() || header[..columns.len()] != *columns || !known_extra {
        let optional_note = if optional.is_empty() {
            String::new()
        } else {
            format!(" (then any of {})", optional.join(","))
        };
        return Err((
            header_index + 1,
            format!(
                "header must be {}{optional_note}, found {}",
                columns.join(","),
                header.join(",")
            ),
        ));
    }
    let positions = optional
        .iter()
        .map(|o| header.iter().position(|h| h == o))
        .collect();
    let columns = &header[..];
    let mut rows = Vec::new();
    for (index, line) in lines {
        let fields = split(line.trim_end_matches('\r')).map_err(|e| (index + 1, e))?;
        if fields.len() != columns.len() {
            return Err((
                index + 1,
                format!("{} fields, the header has {}", fields.len(), columns.len()),
            ));
        }
        rows.push(Row {
            line: index + 1,
            fields,
        });
    }
    Ok((rows, positions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_commas_and_escaped_quotes() {
        assert_eq!(
            split(r#"a,"b,c","d ""e""",,f"#).unwrap(),
            ["a", "b,c", "d \"e\"", "", "f"]
        );
        assert!(split(r#"a,"b"#).is_err());
    }

    #[test]
    fn header_and_field_count_are_checked_with_line_numbers() {
        let rows = parse("x,y\n\n1,2\n3,4\n", &["x", "y"]).unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(rows[1].field(1), "4");
        assert_eq!(parse("x,z\n", &["x", "y"]).unwrap_err().0, 1);
        assert_eq!(
            parse("x,y\n1,2\n1\n", &["x", "y"]).unwrap_err(),
            (3, "1 fields, the header has 2".to_string())
        );
    }
}
