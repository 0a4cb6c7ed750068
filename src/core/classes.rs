//! Finding a class by the name a user typed, and listing the classes when none matches: `gradcam
//! --class`, `scan --positive`, `train --one-class --normal` and evaluation on a folder all ask
//! the same question and answer it the same way.

/// The index of `name` among `classes`: the exact name, else the first that differs only in case.
pub fn find(classes: &[String], name: &str) -> Option<usize> {
    classes
        .iter()
        .position(|c| c == name)
        .or_else(|| classes.iter().position(|c| c.eq_ignore_ascii_case(name)))
}

/// The indices of the classes named like one of `names`, ignoring case ("Positive", "crack").
pub fn named_like(classes: &[String], names: &[&str]) -> Vec<usize> {
    (0..classes.len())
        .filter(|&i| names.iter().any(|n| classes[i].eq_ignore_ascii_case(n)))
        .collect()
}

/// The classes as an error message lists them: every name when there are at most 20, else the
/// first ten and how many there are (`more` is added inside those brackets).
pub fn listed(classes: &[String], more: &str) -> String {
    if classes.len() <= 20 {
        classes.join(", ")
    } else {
        format!(
            "{}, ... ({} in all{more})",
            classes[..10].join(", "),
            classes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_names_win_over_names_in_another_case() {
        let classes = names(&["crack", "Crack", "normal"]);
        assert_eq!(find(&classes, "Crack"), Some(1));
        assert_eq!(find(&classes, "CRACK"), Some(0));
        assert_eq!(find(&classes, "NORMAL"), Some(2));
        assert_eq!(find(&classes, "other"), None);
        assert_eq!(named_like(&classes, &["CRACK"]), vec![0, 1]);
    }

    #[test]
    fn long_lists_are_cut_after_ten() {
        let many: Vec<String> = (0..25).map(|i| format!("c{i}")).collect();
        let text = listed(&many, "; more");
        assert!(text.starts_with("c0, c1") && text.ends_with("... (25 in all; more)"));
        assert_eq!(listed(&names(&["a", "b"]), "; more"), "a, b");
    }
}
