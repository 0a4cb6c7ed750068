//! The floors of the crate only look down: each top-level module of `src/` stands on a floor
//! (README, "Module map"), and its code imports only modules on the floors below it (and itself).
//! Test code may reach anywhere: `#[cfg(test)]` modules are not read.
//!
//! A new top-level module fails this test until it is given a floor here and in the README.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// From the ground up. Modules on one floor do not import each other.
const FLOORS: &[&[&str]] = &[
    &["core"],
    &["termio"],
    &["imaging"],
    &["data", "model"],
    &["explain"],
    &["detector"],
    &["scan", "export"],
    &["run"],
    &["train"],
    &["app"],
    &["ui", "tui"],
    &["cli"],
    &["cmd"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

/// One import that runs up (or sideways, or to a module on no floor).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// The crate's source files outside test-only modules.
fn source_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let test_only = test_only_files(root, &files);
    files.retain(|f| !test_only.iter().any(|t| f.starts_with(t)));
    files.sort();
    files
}

/// Files and folders of modules declared under `#[cfg(test)]` (`mod tests;`, `mod fake;`...).
fn test_only_files(root: &Path, files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let declared = pair[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'));
            if let Some(name) = declared {
                let dir = if file.ends_with("mod.rs") || file.ends_with("lib.rs") {
                    file.parent().unwrap().to_path_buf()
                } else {
                    file.with_extension("")
                };
                out.push(dir.join(format!("{name}.rs")));
                out.push(dir.join(name));
            }
        }
    }
    let _ = root;
    out
}

/// The code of a file up to its first `#[cfg(test)]` module written inline.
fn code_of(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        if trimmed == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push((i + 1, *line));
    }
    out
}

/// The top-level modules a line names through `crate::`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        // `crackscope::` from doc examples, or a longer identifier ending in `crate`, is not it.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// Every import of `root`'s files that does not run down.
fn violations(root: &Path) -> Vec<Violation> {
    let mut found = BTreeSet::new();
    for file in source_files(root) {
        let relative = file.strip_prefix(root).unwrap();
        let Some(from) = relative.components().next().map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        }) else {
            continue;
        };
        if from == "lib" || from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in code_of(&text) {
            for to in crate_paths(code) {
                if to == from {
                    continue;
                }
                let ok = matches!(
                    (floor_of(&from), floor_of(&to)),
                    (Some(a), Some(b)) if b < a
                );
                if !ok {
                    found.insert(Violation {
                        file: relative.display().to_string(),
                        line,
                        from: from.clone(),
                        to,
                    });
                }
            }
        }
    }
    found.into_iter().collect()
}

#[test]
fn floors_only_look_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&root);
    let listed: Vec<String> = found
        .iter()
        .map(|v| format!("{}:{}: {} imports {}", v.file, v.line, v.from, v.to))
        .collect();
    assert!(
        found.is_empty(),
        "imports that do not run down the floors (see README, \"Module map\"):\n{}",
        listed.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    for line in lib.lines() {
        let Some(name) = line
            .trim()
            .trim_start_matches("pub ")
            .strip_prefix("mod ")
            .and_then(|r| r.strip_suffix(';'))
        else {
            continue;
        };
        assert!(
            floor_of(name).is_some(),
            "src/{name} stands on no floor: add it to FLOORS and to the README's module map"
        );
    }
}

#[test]
fn an_upward_import_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("core")).unwrap();
    std::fs::write(
        src.join("core/math.rs"),
        "use crate::app::job::Observer;\n// crate::cmd in a comment is fine\n\
         #[cfg(test)]\nmod tests {\n    use crate::cmd::train;\n}\n",
    )
    .unwrap();
    std::fs::write(src.join("cmd.rs"), "use crate::core::math;\n").unwrap();
    let found = violations(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].from.as_str(), found[0].to.as_str(), found[0].line),
        ("core", "app", 1)
    );
}
