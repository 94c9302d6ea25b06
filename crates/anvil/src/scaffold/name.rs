//! Which names `anvil new` accepts for a crate: the name is the package's and the command's,
//! its `-`/`_`-normalised form is the library's, and it is the first label of the custom
//! resource's API group, so it must be a valid crate name *and* a DNS label.

/// Rust keywords (strict, reserved and weak-but-problematic ones): not usable as a library
/// name.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Library names that would clash with the standard crates, with what the generated crate
/// depends on, or with Cargo's own directories.
const TAKEN: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "anvil",
    "anvil_checker",
    "anvil_objects",
    "anvil_reconciler",
    "anvil_tokens_derive",
    "anvil_cluster_model",
    "anvil_shim",
    "k8s_openapi",
    "kube",
    "kube_core",
    "kube_client",
    "kube_runtime",
    "kube_derive",
    "schemars",
    "serde",
    "serde_json",
    "serde_yaml",
    "mimalloc",
    "build",
    "deps",
    "examples",
    "incremental",
];

/// The longest name: the API group's first label is the name, and a DNS label has at most 63
/// characters.
pub const MAX_LEN: usize = 63;

/// `Ok` when `name` can name the generated crate; `Err` says why not.
pub fn validate(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.len() > MAX_LEN {
        Some(format!("it is longer than {MAX_LEN} characters"))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lowercase letter".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        Some(format!(
            "it contains {c:?}; use lowercase letters, digits, `-` and `_`"
        ))
    } else if name.ends_with(['-', '_']) {
        Some("it must end with a letter or a digit".to_string())
    } else if KEYWORDS.contains(&name) {
        Some("it is a Rust keyword".to_string())
    } else if TAKEN.contains(&lib_name(name).as_str()) {
        Some("it clashes with a standard crate or a dependency of the generated crate".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(format!("invalid crate name {name:?}: {why}")),
        None => Ok(()),
    }
}

/// The library's name: `name` with `-` replaced by `_`.
pub fn lib_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The custom resource's API group: `<name>.example.com` with `_` replaced by `-` (a DNS
/// subdomain; the generated code says to change it to a domain one owns).
pub fn api_group(name: &str) -> String {
    format!("{}.example.com", name.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for n in ["my-operator", "web_sites", "op2", "a"] {
            assert_eq!(validate(n), Ok(()), "{n}");
        }
        assert!(validate(&"a".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn bad_names_say_why() {
        for (n, why) in [
            ("", "empty"),
            ("My-Operator", "lowercase letter"),
            ("1op", "lowercase letter"),
            ("-op", "lowercase letter"),
            ("my operator", "contains ' '"),
            ("my.operator", "contains '.'"),
            ("op-", "end with"),
            ("fn", "keyword"),
            ("anvil", "clashes"),
            ("anvil-shim", "clashes"),
            ("serde_json", "clashes"),
            ("test", "clashes"),
            ("ü", "lowercase letter"),
        ] {
            let e = validate(n).unwrap_err();
            assert!(e.contains(why), "{n:?}: {e}");
        }
        assert!(
            validate(&"a".repeat(MAX_LEN + 1))
                .unwrap_err()
                .contains("longer")
        );
    }

    #[test]
    fn derived_names() {
        assert_eq!(lib_name("my-op"), "my_op");
        assert_eq!(api_group("my_op"), "my-op.example.com");
    }
}
