//! A small parser of Fluent Bit's classic configuration format, for checking what the
//! controllers render (Fluent Bit itself is not packaged in the registries this project
//! reaches). It accepts what Fluent Bit's classic parser accepts for the sections we use:
//! `[SECTION]` headers (SERVICE, INPUT, FILTER, OUTPUT, PARSER, MULTILINE_PARSER), indented
//! `Key Value` entries, comments and blank lines, `@SET`/`@INCLUDE` directives.

use std::collections::BTreeMap;

/// One section: its name and its entries in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

impl Section {
    /// The value of `key` (case-insensitive, as in Fluent Bit).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

const SECTIONS: &[&str] = &[
    "SERVICE",
    "INPUT",
    "FILTER",
    "OUTPUT",
    "PARSER",
    "MULTILINE_PARSER",
];

/// Parses `text`; `Err` names the first bad line.
pub fn parse(text: &str) -> Result<Vec<Section>, String> {
    let mut out: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with("@SET") || t.starts_with("@INCLUDE")
        {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or(format!("line {n}: unterminated section header {t:?}"))?
                .trim()
                .to_ascii_uppercase();
            if !SECTIONS.contains(&name.as_str()) {
                return Err(format!("line {n}: unknown section [{name}]"));
            }
            if line.starts_with(char::is_whitespace) {
                return Err(format!("line {n}: an indented section header"));
            }
            out.push(Section {
                name,
                entries: Vec::new(),
            });
            continue;
        }
        let section = out
            .last_mut()
            .ok_or(format!("line {n}: an entry outside of any section"))?;
        if !line.starts_with(char::is_whitespace) {
            return Err(format!("line {n}: an entry must be indented: {t:?}"));
        }
        let mut parts = t.splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(str::trim).unwrap_or_default();
        if value.is_empty() {
            return Err(format!("line {n}: key {key:?} has no value"));
        }
        section.entries.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// Checks a rendered configuration as Fluent Bit would load it: `main` parses, every
/// INPUT/FILTER/OUTPUT/PARSER has a `Name`, the parsers file named by the SERVICE section is
/// one of the `files`, and every parser an input uses is defined there. Returns the sections
/// by name count.
pub fn check(
    main: &str,
    files: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, usize>, String> {
    let sections = parse(main)?;
    let mut counts = BTreeMap::new();
    for s in &sections {
        *counts.entry(s.name.clone()).or_insert(0) += 1;
        if s.name != "SERVICE" && s.get("Name").is_none() {
            return Err(format!("a [{}] section has no Name", s.name));
        }
    }
    let mut parsers = Vec::new();
    if let Some(file) = sections
        .iter()
        .find(|s| s.name == "SERVICE")
        .and_then(|s| s.get("Parsers_File"))
    {
        let text = files
            .get(file)
            .ok_or(format!("Parsers_File {file} is not in the Secret"))?;
        for p in parse(text)? {
            if p.name != "PARSER" && p.name != "MULTILINE_PARSER" {
                return Err(format!("{file} holds a [{}] section", p.name));
            }
            parsers.push(p.get("Name").ok_or("a parser without Name")?.to_string());
        }
    }
    for s in sections.iter().filter(|s| s.name == "INPUT") {
        if let Some(p) = s.get("Parser")
            && !parsers.iter().any(|q| q == p)
        {
            return Err(format!("input uses parser {p}, which is not defined"));
        }
    }
    Ok(counts)
}

#[test]
fn the_parser_rejects_broken_configurations() {
    let files: BTreeMap<String, String> = [(
        "parsers.conf".to_string(),
        "[PARSER]\n    Name docker\n    Format json\n".to_string(),
    )]
    .into();
    let ok = "[SERVICE]\n    Parsers_File parsers.conf\n[INPUT]\n    Name tail\n    Parser docker\n[OUTPUT]\n    Name stdout\n    Match *\n";
    let counts = check(ok, &files).unwrap();
    assert_eq!(counts["INPUT"], 1);
    for bad in [
        "[SERVICE\n    Flush 1\n",
        "Flush 1\n",
        "[INPUT]\nName tail\n",
        "[INPUT]\n    Name\n",
        "[INPUTS]\n    Name tail\n",
        "[INPUT]\n    Alias x\n",
        "[SERVICE]\n    Parsers_File missing.conf\n",
        "[SERVICE]\n    Parsers_File parsers.conf\n[INPUT]\n    Name tail\n    Parser cri\n",
    ] {
        assert!(check(bad, &files).is_err(), "accepted {bad:?}");
    }
}
