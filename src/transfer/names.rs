//! Safe output names: checks a file name sent by a remote peer before the receiver creates
//! anything under it. A name is accepted only as one plain file-name component that is valid
//! on the system the receiver runs on; it is never repaired, since a silently changed name is
//! a surprise and a rejected one is a clear error. Pure: no file-system access.
//!
//! Two sets of rules ([`Rules`]): what can escape the folder or is invalid anywhere (empty,
//! `.`/`..`, control characters, `/` and `\`, over-long) is refused everywhere; what only
//! Windows forbids or gives another meaning (device names like `con.txt`, `<>:"|?*`, a drive
//! prefix, a trailing `.` or space) is refused only when the receiver runs on Windows. A name
//! ending in `.part` is a valid name: the receiver keeps the two apart (`recv/place.rs`).
//!
//! Must not import: webrtc, tokio, indicatif, `cli`, or anything else in dcsend.

use std::ffi::{OsStr, OsString};

/// Suffix of the file the receiver writes until the item's digest matches.
pub const PART_SUFFIX: &str = ".part";

/// Longest accepted name, in bytes: 255 (the usual file-system limit for one component)
/// minus [`PART_SUFFIX`], so that `NAME.part` can be created too.
pub const MAX_NAME_BYTES: usize = 255 - PART_SUFFIX.len();

/// Windows device names. Windows opens the device for these, with any extension and in any
/// case (`con.txt`, `Nul`), whatever the folder. `COM0`/`LPT0`, the superscript digits and
/// `CONIN$`/`CONOUT$` are on Microsoft's list too ("Naming Files, Paths, and Namespaces").
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// Characters Windows does not allow in a name (`:` would name an NTFS stream); `/` and `\`
/// are separators, refused everywhere.
const WINDOWS_FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// Which system's naming rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// Linux, macOS and other Unix systems: any byte but `/` and NUL is valid; dcsend also
    /// refuses control characters and `\` (a separator elsewhere, a surprise here).
    Unix,
    /// Windows: the Unix rules, plus device names, `<>:"|?*`, a drive prefix and a trailing
    /// `.` or space. The browser page applies these too: it cannot know where its download
    /// lands.
    Windows,
}

impl Rules {
    /// The rules of the system this receiver runs on.
    pub const HERE: Rules = if cfg!(windows) { Rules::Windows } else { Rules::Unix };
}

/// Why a remote file name was refused. Each message quotes the name (Rust-escaped, shortened
/// when long) and gives the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("refusing file name \"\": it is empty")]
    Empty,
    /// `.` or `..`: a directory, not a file.
    #[error("refusing file name {:?}: it names a directory", shown(.0))]
    Dots(String),
    /// Contains NUL or another control character (newlines, escapes, DEL, C1 controls).
    #[error("refusing file name {:?}: it contains a control character", shown(.0))]
    ControlChar(String),
    /// Contains `/` or `\`: the receiver accepts no directories at all.
    #[error("refusing file name {:?}: it contains a path separator ('/' or '\\')", shown(.0))]
    Separator(String),
    /// Longer than [`MAX_NAME_BYTES`].
    #[error(
        "refusing file name {:?}: it is {len} bytes long, over the {MAX_NAME_BYTES}-byte limit",
        shown(.name)
    )]
    TooLong { name: String, len: usize },
    /// (Windows) Starts with a drive prefix such as `C:`.
    #[error("refusing file name {:?}: it starts with a drive prefix", shown(.0))]
    DrivePrefix(String),
    /// (Windows) Contains one of `<>:"|?*`.
    #[error("refusing file name {:?}: Windows does not allow '{ch}' in a name", shown(.name))]
    WindowsChar { name: String, ch: char },
    /// (Windows) A device name such as `CON` or `nul.txt`.
    #[error("refusing file name {:?}: it is a reserved Windows device name", shown(.0))]
    Reserved(String),
    /// (Windows) Ends in `.` or ` `, which Windows strips, so the file would get another name.
    #[error("refusing file name {:?}: it ends in '.' or ' '", shown(.0))]
    TrailingDotOrSpace(String),
    /// A path (tree extension) starting with `/`: it would leave the output folder.
    #[error("refusing path {:?}: it is absolute", shown(.0))]
    Absolute(String),
    /// A path (tree extension) with more than [`MAX_PATH_DEPTH`] components.
    #[error("refusing path {:?}: it is over {MAX_PATH_DEPTH} folders deep", shown(.0))]
    TooDeep(String),
    /// A path (tree extension) one of whose components breaks the rules above.
    #[error("refusing path {:?}: {component}", shown(.path))]
    InPath { path: String, component: Box<NameError> },
}

/// Deepest path accepted from a sender (tree extension): a folder nested deeper is refused,
/// so a hostile sender cannot have the receiver create folders without bound within one
/// 16 KiB control message.
pub const MAX_PATH_DEPTH: usize = 64;

/// Splits a relative `/`-separated path sent by a remote peer (tree extension) into its
/// components, each checked by [`sanitize`]: no component may be empty, `.` or `..`, hold a
/// `\` or a control character, and so on, so the path stays inside the output folder.
/// Never repaired: `a//b`, `a/` and `./a` are refused like `../a`.
pub fn sanitize_path(remote: &str) -> Result<Vec<String>, NameError> {
    sanitize_path_for(remote, Rules::HERE)
}

/// [`sanitize_path`] under the given system's rules.
pub fn sanitize_path_for(remote: &str, rules: Rules) -> Result<Vec<String>, NameError> {
    if remote.starts_with('/') {
        return Err(NameError::Absolute(remote.to_owned()));
    }
    if remote.split('/').count() > MAX_PATH_DEPTH {
        return Err(NameError::TooDeep(remote.to_owned()));
    }
    let checked: Result<Vec<String>, NameError> =
        remote.split('/').map(|c| sanitize_for(c, rules)).collect();
    checked.map_err(|e| match remote.contains('/') {
        // A single component is a plain name: its own error says it all.
        false => e,
        true => NameError::InPath { path: remote.to_owned(), component: Box::new(e) },
    })
}

/// Returns `remote` unchanged if it is safe to use as one file name inside the output
/// folder on this system, or the first rule it breaks. See `docs/protocol.md` for the rules.
pub fn sanitize(remote: &str) -> Result<String, NameError> {
    sanitize_for(remote, Rules::HERE)
}

/// [`sanitize`] under the given system's rules.
pub fn sanitize_for(remote: &str, rules: Rules) -> Result<String, NameError> {
    let name = remote.to_owned();
    if remote.is_empty() {
        return Err(NameError::Empty);
    }
    if remote == "." || remote == ".." {
        return Err(NameError::Dots(name));
    }
    if remote.chars().any(char::is_control) {
        return Err(NameError::ControlChar(name));
    }
    if remote.contains(['/', '\\']) {
        return Err(NameError::Separator(name));
    }
    if remote.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong { len: remote.len(), name });
    }
    if rules == Rules::Unix {
        return Ok(name);
    }
    if let [drive, b':', ..] = remote.as_bytes()
        && drive.is_ascii_alphabetic()
    {
        return Err(NameError::DrivePrefix(name));
    }
    if let Some(ch) = remote.chars().find(|c| WINDOWS_FORBIDDEN.contains(c)) {
        return Err(NameError::WindowsChar { name, ch });
    }
    if is_reserved(remote) {
        return Err(NameError::Reserved(name));
    }
    if remote.ends_with(['.', ' ']) {
        return Err(NameError::TrailingDotOrSpace(name));
    }
    Ok(name)
}

/// The name the receiver writes to until the digest matches: `name` + `.part`. An
/// `OsStr`: `-o FILE` names need not be UTF-8.
pub fn part_name(name: &OsStr) -> OsString {
    let mut part = name.to_owned();
    part.push(PART_SUFFIX);
    part
}

/// Windows ignores everything from the first `.` and trailing spaces before it when it
/// matches device names, so `con.tar.gz` and `nul .txt` are devices too.
fn is_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    // ASCII case folding is enough: the superscript digits have no case.
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem))
}

/// Keeps error messages readable when a peer sends a very long name.
fn shown(name: &str) -> String {
    const KEEP_CHARS: usize = 64;
    match name.char_indices().nth(KEEP_CHARS) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_and_every_component_checked() {
        let ok = [
            ("a", vec!["a"]),
            ("photos/2024/img 1.jpg", vec!["photos", "2024", "img 1.jpg"]),
            ("ünï/cödé 😀.txt", vec!["ünï", "cödé 😀.txt"]),
            ("..x/x..", vec!["..x", "x.."]),
        ];
        for (path, want) in ok {
            assert_eq!(sanitize_path_for(path, Rules::Unix).unwrap(), want, "{path}");
        }
        let bad = [
            "../x",
            "a/../../x",
            "a/..",
            "..",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "/etc/passwd",
            "/",
            "",
            "a\\..\\x",
            "a/b\\c",
            "a/\u{0}/b",
            "a/b\nc",
        ];
        for path in bad {
            assert!(sanitize_path_for(path, Rules::Unix).is_err(), "{path:?} accepted");
        }
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        assert_eq!(sanitize_path(&deep), Err(NameError::TooDeep(deep.clone())));
        assert_eq!(sanitize_path(&deep[2..]).unwrap().len(), MAX_PATH_DEPTH);
    }

    #[test]
    fn a_path_error_names_the_path_and_the_component() {
        let err = sanitize_path_for("a/../../x", Rules::Unix).unwrap_err().to_string();
        assert_eq!(
            err,
            r#"refusing path "a/../../x": refusing file name "..": it names a directory"#
        );
        let err = sanitize_path_for("/etc/passwd", Rules::Unix).unwrap_err().to_string();
        assert_eq!(err, r#"refusing path "/etc/passwd": it is absolute"#);
        // A lone component keeps the plain-name message.
        assert_eq!(sanitize_path_for("..", Rules::Unix), Err(NameError::Dots("..".into())));
        assert!(sanitize_path_for("x/con.txt", Rules::Windows).is_err());
    }

    /// Valid under both rule sets.
    const GOOD_EVERYWHERE: &[&str] = &[
        "a",
        "report.pdf",
        "archive.tar.gz",
        ".bashrc",
        "...x",
        "..x",
        "x..y",
        " leading space",
        "has space.txt",
        "-rf",
        "ünïcödé 😀.txt",
        "console.log",
        "con_file",
        "nullable.rs",
        "com10",
        "lpt",
        "auxiliary",
        "COM1x.txt",
        // Our suffix is a valid name: the receiver keeps `x.part` and `x`'s temporary file
        // apart (see transfer::recv).
        "x.part",
        ".part",
        "movie.mkv.PART",
        "x.part.part",
        "x.part2",
        "part",
    ];

    /// Valid on Unix, refused on Windows (with the rule that refuses it there).
    fn windows_only() -> Vec<(&'static str, NameError)> {
        use NameError as E;
        let s = String::from;
        vec![
            ("C:", E::DrivePrefix(s("C:"))),
            ("c:x", E::DrivePrefix(s("c:x"))),
            ("Z:file.txt", E::DrivePrefix(s("Z:file.txt"))),
            ("ab:c", E::WindowsChar { name: s("ab:c"), ch: ':' }),
            ("1:x", E::WindowsChar { name: s("1:x"), ch: ':' }),
            ("what?", E::WindowsChar { name: s("what?"), ch: '?' }),
            ("a*b", E::WindowsChar { name: s("a*b"), ch: '*' }),
            ("<x>", E::WindowsChar { name: s("<x>"), ch: '<' }),
            ("say \"hi\"", E::WindowsChar { name: s("say \"hi\""), ch: '"' }),
            ("a|b", E::WindowsChar { name: s("a|b"), ch: '|' }),
            ("CON", E::Reserved(s("CON"))),
            ("con", E::Reserved(s("con"))),
            ("con.txt", E::Reserved(s("con.txt"))),
            ("Con.tar.gz", E::Reserved(s("Con.tar.gz"))),
            ("nul .txt", E::Reserved(s("nul .txt"))),
            ("PRN", E::Reserved(s("PRN"))),
            ("aux.c", E::Reserved(s("aux.c"))),
            ("NUL", E::Reserved(s("NUL"))),
            ("com1", E::Reserved(s("com1"))),
            ("COM9.log", E::Reserved(s("COM9.log"))),
            ("lpt1", E::Reserved(s("lpt1"))),
            ("LPT9.txt", E::Reserved(s("LPT9.txt"))),
            ("com0", E::Reserved(s("com0"))),
            ("COM¹", E::Reserved(s("COM¹"))),
            ("lpt³.txt", E::Reserved(s("lpt³.txt"))),
            ("conin$", E::Reserved(s("conin$"))),
            ("name.", E::TrailingDotOrSpace(s("name."))),
            ("name ", E::TrailingDotOrSpace(s("name "))),
            ("...", E::TrailingDotOrSpace(s("..."))),
            (" ", E::TrailingDotOrSpace(s(" "))),
        ]
    }

    /// Refused under both rule sets, with the first broken rule.
    fn bad_everywhere() -> Vec<(String, NameError)> {
        use NameError as E;
        let s = String::from;
        let too_long = "a".repeat(MAX_NAME_BYTES + 1);
        let too_long_multibyte = "é".repeat(MAX_NAME_BYTES / 2 + 1);
        let cases = vec![
            // empty, dots
            (s(""), E::Empty),
            (s("."), E::Dots(s("."))),
            (s(".."), E::Dots(s(".."))),
            // control characters, NUL first
            (s("a\0b"), E::ControlChar(s("a\0b"))),
            (s("\0"), E::ControlChar(s("\0"))),
            (s("line\nbreak"), E::ControlChar(s("line\nbreak"))),
            (s("cr\r"), E::ControlChar(s("cr\r"))),
            (s("tab\t"), E::ControlChar(s("tab\t"))),
            (s("esc\u{1b}[31m"), E::ControlChar(s("esc\u{1b}[31m"))),
            (s("del\u{7f}"), E::ControlChar(s("del\u{7f}"))),
            (s("c1\u{85}"), E::ControlChar(s("c1\u{85}"))),
            // separators: no directories at all
            (s("../x"), E::Separator(s("../x"))),
            (s("..\\x"), E::Separator(s("..\\x"))),
            (s("/etc/passwd"), E::Separator(s("/etc/passwd"))),
            (s("a/b"), E::Separator(s("a/b"))),
            (s("a\\b"), E::Separator(s("a\\b"))),
            (s("dir/"), E::Separator(s("dir/"))),
            (s("/"), E::Separator(s("/"))),
            (s("C:\\x"), E::Separator(s("C:\\x"))),
            (s("\\\\server\\share"), E::Separator(s("\\\\server\\share"))),
            // length, counted in bytes
            (too_long.clone(), E::TooLong { name: too_long, len: MAX_NAME_BYTES + 1 }),
            (
                too_long_multibyte.clone(),
                E::TooLong { len: too_long_multibyte.len(), name: too_long_multibyte },
            ),
        ];
        cases
    }

    #[test]
    fn good_names_are_returned_unchanged() {
        let long = "a".repeat(MAX_NAME_BYTES);
        for rules in [Rules::Unix, Rules::Windows] {
            for name in GOOD_EVERYWHERE.iter().copied().chain([long.as_str()]) {
                assert_eq!(sanitize_for(name, rules).as_deref(), Ok(name), "{rules:?} {name:?}");
            }
        }
    }

    #[test]
    fn bad_names_are_refused_everywhere_with_the_first_broken_rule() {
        for rules in [Rules::Unix, Rules::Windows] {
            for (name, want) in bad_everywhere() {
                assert_eq!(sanitize_for(&name, rules), Err(want), "{rules:?} {name:?}");
            }
        }
    }

    #[test]
    fn windows_names_are_refused_only_on_windows() {
        for (name, want) in windows_only() {
            assert_eq!(sanitize_for(name, Rules::Unix).as_deref(), Ok(name), "{name:?}");
            assert_eq!(sanitize_for(name, Rules::Windows), Err(want), "{name:?}");
        }
    }

    #[test]
    fn sanitize_applies_the_rules_of_this_system() {
        let want = if cfg!(windows) { Rules::Windows } else { Rules::Unix };
        assert_eq!(Rules::HERE, want);
        assert_eq!(sanitize("con.txt").is_ok(), !cfg!(windows));
        assert_eq!(sanitize("movie.part").as_deref(), Ok("movie.part"));
    }

    #[test]
    fn messages_quote_the_escaped_name_and_say_why() {
        let cases = [
            ("", r#"refusing file name "": it is empty"#),
            ("..", r#"refusing file name "..": it names a directory"#),
            ("a\0b", r#"refusing file name "a\0b": it contains a control character"#),
            ("../x", r#"refusing file name "../x": it contains a path separator ('/' or '\')"#),
            ("C:", r#"refusing file name "C:": it starts with a drive prefix"#),
            ("ab:c", r#"refusing file name "ab:c": Windows does not allow ':' in a name"#),
            ("con.txt", r#"refusing file name "con.txt": it is a reserved Windows device name"#),
            ("x.", r#"refusing file name "x.": it ends in '.' or ' '"#),
        ];
        for (name, want) in cases {
            assert_eq!(sanitize_for(name, Rules::Windows).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        let name = "x".repeat(1000);
        let msg = sanitize(&name).unwrap_err().to_string();
        assert!(msg.starts_with(&format!("refusing file name \"{}…\"", "x".repeat(64))), "{msg}");
        assert!(msg.ends_with("it is 1000 bytes long, over the 250-byte limit"), "{msg}");
    }

    #[test]
    fn part_name_appends_the_suffix() {
        assert_eq!(part_name("report.pdf".as_ref()), "report.pdf.part");
        let longest = "a".repeat(MAX_NAME_BYTES);
        let part = part_name(longest.as_ref());
        assert_eq!(part.len(), 255, "NAME.part of the longest name still fits");
    }
}
