//! `--input` patterns, as a shell expands them: `*` (any run of characters),
//! `?` (one character) and `[...]` (one of a set: `[abc]`, `[a-z]`, `[!a]`)
//! in any component of the path. A `*` or `?` never matches a `/`, nor a
//! leading `.` (hidden files need a pattern that starts with `.`).
//!
//! Written on std rather than taken from a crate: the agent needs only this
//! much, and it runs on small devices where every dependency is carried.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Whether `path` holds a wildcard (else it names one file).
pub fn is_pattern(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The regular files (symbolic links followed) that `pattern` matches now,
/// sorted. Directories that cannot be read match nothing.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = comp.as_os_str();
        let wild = matches!(comp, Component::Normal(_)) && is_pattern(Path::new(part));
        if !wild {
            for p in &mut found {
                p.push(part);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let listed = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(listed) else {
                continue;
            };
            let mut names: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|n| matches(part.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    let mut files: Vec<PathBuf> = found
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty() && p.is_file())
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Whether file name `name` matches the one-component pattern `pat`.
pub fn matches(pat: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pat.first() != Some(&b'.') {
        return false;
    }
    // Classic matching with one backtrack point: the last `*` seen.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => match class(&pat[p..], name[n]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                // No closing `]`: a plain `[`.
                None => (name[n] == b'[').then_some(1),
            },
            Some(&c) => (c == name[n]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                p += len;
                n += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pat` (`[...]`); returns
/// whether it matched and the class's length, or `None` if it never closes.
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = pat.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pat[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        matches(p.as_bytes(), n.as_bytes())
    }

    #[test]
    fn wildcards_match_as_a_shell_does() {
        assert!(m("*.log", "app.log"));
        assert!(!m("*.log", ".log"));
        assert!(!m("*.log", "app.log.1"));
        assert!(m("app.log*", "app.log.1"));
        assert!(m("a?c", "abc") && !m("a?c", "ac"));
        assert!(m("*a*b*c", "xxaxbxxc") && !m("*a*b*c", "xxaxcxb"));
        assert!(m("[ab]x", "bx") && !m("[ab]x", "cx"));
        assert!(m("[a-c]1", "b1") && !m("[!a-c]1", "b1") && m("[^a-c]1", "d1"));
        assert!(m("[]]", "]") && m("x[", "x["));
        assert!(!m("*", ".hidden") && m(".*", ".hidden"));
        assert!(m("*", "") && m("a*", "a"));
        assert!(m("", "") && !m("", "a"));
    }

    #[test]
    fn a_pattern_expands_to_the_regular_files_it_matches_sorted() {
        let dir = std::env::temp_dir().join(format!("spillway-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["a", "b"] {
            std::fs::create_dir_all(dir.join(sub).join("logs.d")).unwrap();
            for f in ["x.log", "y.log", "y.log.1", ".z.log"] {
                std::fs::write(dir.join(sub).join(f), "").unwrap();
            }
        }
        let got = expand(&dir.join("*").join("*.log"));
        let want: Vec<_> = ["a/x.log", "a/y.log", "b/x.log", "b/y.log"]
            .iter()
            .map(|p| dir.join(p))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            expand(&dir.join("a").join("[xy].log.?")),
            vec![dir.join("a/y.log.1")]
        );
        assert!(expand(&dir.join("nowhere").join("*.log")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
