//! The files of a generated operator crate, embedded in the binary from
//! `crates/anvil/templates/operator/`, and their placeholders.
//!
//! Placeholders are `{{name}}` (the crate and command name), `{{crate}}` (the library name),
//! `{{group}}` (the custom resource's API group), `{{anvil_crate}}` (the path of the `anvil`
//! crate, escaped for a TOML string) and `{{anvil_checkout}}` (the checkout, for prose).

/// One file of the template: its path in the generated crate and its text.
pub struct Template {
    /// Path relative to the crate's directory.
    pub path: &'static str,
    /// The text, with placeholders.
    pub text: &'static str,
}

macro_rules! template {
    ($path:literal, $source:literal) => {
        Template {
            path: $path,
            text: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/templates/operator/",
                $source
            )),
        }
    };
}

/// Every file of the template. (`Cargo.toml`, `.gitignore` and `.dockerignore` have other names in the
/// repository, so that Cargo and git do not take them for the repository's own.)
pub const FILES: &[Template] = &[
    template!("Cargo.toml", "Cargo.toml.tmpl"),
    template!(".gitignore", "gitignore"),
    template!(".dockerignore", "dockerignore"),
    template!("Dockerfile", "Dockerfile"),
    template!("README.md", "README.md"),
    template!("src/main.rs", "src/main.rs"),
    template!("src/lib.rs", "src/lib.rs"),
    template!("src/resource.rs", "src/resource.rs"),
    template!("src/reconciler.rs", "src/reconciler.rs"),
    template!("src/desired.rs", "src/desired.rs"),
    template!("src/verify.rs", "src/verify.rs"),
    template!("src/run.rs", "src/run.rs"),
    template!("tests/verify.rs", "tests/verify.rs"),
];

/// The values of the placeholders.
pub struct Vars {
    /// `{{name}}`.
    pub name: String,
    /// `{{crate}}`.
    pub lib: String,
    /// `{{group}}`.
    pub group: String,
    /// `{{anvil_crate}}` (already escaped for a TOML basic string).
    pub anvil_crate: String,
    /// `{{anvil_checkout}}`.
    pub anvil_checkout: String,
}

/// `text` with its placeholders replaced.
pub fn render(text: &str, v: &Vars) -> String {
    text.replace("{{name}}", &v.name)
        .replace("{{crate}}", &v.lib)
        .replace("{{group}}", &v.group)
        .replace("{{anvil_crate}}", &v.anvil_crate)
        .replace("{{anvil_checkout}}", &v.anvil_checkout)
}

/// `s` escaped for the inside of a TOML basic string (`"..."`).
pub fn toml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            name: "my-op".into(),
            lib: "my_op".into(),
            group: "my-op.example.com".into(),
            anvil_crate: "/src/anvil/crates/anvil".into(),
            anvil_checkout: "/src/anvil".into(),
        }
    }

    #[test]
    fn every_placeholder_is_replaced() {
        for t in FILES {
            let out = render(t.text, &vars());
            assert!(!out.contains("{{"), "{}: {out}", t.path);
        }
    }

    #[test]
    fn the_manifest_names_the_crate_and_anvil() {
        let toml = render(FILES[0].text, &vars());
        assert!(toml.contains("name = \"my-op\""), "{toml}");
        assert!(
            toml.contains("path = \"/src/anvil/crates/anvil\""),
            "{toml}"
        );
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_escape(r#"C:\a "b""#), r#"C:\\a \"b\""#);
        assert_eq!(toml_escape("a\nb"), "a\\u000Ab");
    }
}
