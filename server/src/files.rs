//! `files` and `images` tool inputs: paths read only under an allow-listed root,
//! `data:` URLs and inline text always accepted.
//!
//! Paths are canonicalised (resolving `..` and every symlink) before the root
//! check, and the canonical path is what gets opened, so neither `../` nor a
//! symlink pointing outside can escape the root. The file is opened once, and
//! what was opened is checked again (where it really is, that it is a regular
//! file, its size) on the handle itself: a path component swapped for a symlink
//! between the check and the open cannot lead outside the root either.
//!
//! Reading is blocking I/O: [`gather_blocking`] runs it on tokio's blocking
//! pool, never on the async workers that serve requests.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::providers::Part;

pub const MAX_TEXT_FILE_BYTES: u64 = 1024 * 1024;
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;
/// All attachments of one call together.
pub const MAX_TOTAL_BYTES: u64 = 32 * 1024 * 1024;

/// Where local paths may be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePolicy {
    /// Only under this canonical directory.
    Root(PathBuf),
    /// Anywhere the process can read (stdio mode without a configured root: the
    /// server runs as the user, on the user's machine).
    Unrestricted,
    /// No local paths at all (HTTP mode without a configured root).
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error(
        "{input}: reading local files is disabled on this server; set CONVERSE_FILES_ROOT to allow paths under a directory, or pass the content inline as a data: URL"
    )]
    Disabled { input: String },
    #[error("{input}: access denied, the path is outside the allowed root")]
    OutsideRoot { input: String },
    #[error("{input}: not found or not readable")]
    NotFound { input: String },
    #[error("{input}: not a regular file")]
    NotAFile { input: String },
    #[error("{input}: too large ({size} bytes, limit {limit})")]
    TooLarge {
        input: String,
        size: u64,
        limit: u64,
    },
    #[error("{input}: not UTF-8 text (binary files are not sent as context)")]
    NotText { input: String },
    #[error("{input}: unsupported image type (use png, jpeg, gif or webp)")]
    UnsupportedImage { input: String },
    #[error("{input}: malformed data: URL")]
    BadDataUrl { input: String },
    #[error("attachments exceed {limit} bytes in total")]
    TotalTooLarge { limit: u64 },
    #[error("{input}: the line range starts after the file's end ({lines} lines)")]
    BadLineRange { input: String, lines: usize },
    /// The blocking read did not finish (it panicked, or the runtime is shutting down).
    #[error("the attachments could not be read")]
    Interrupted,
}

impl FilePolicy {
    /// The policy for a transport: a configured root always wins; otherwise stdio
    /// may read anywhere and HTTP reads nothing.
    pub fn new(root: Option<&Path>, stdio: bool) -> std::io::Result<Self> {
        Ok(match root {
            Some(root) => FilePolicy::Root(std::fs::canonicalize(root)?),
            None if stdio => FilePolicy::Unrestricted,
            None => FilePolicy::Refused,
        })
    }

    /// Resolves a user path to the canonical file it names, enforcing the root.
    fn resolve(&self, input: &str) -> Result<PathBuf, FileError> {
        let path = Path::new(input);
        let candidate = match self {
            FilePolicy::Refused => {
                return Err(FileError::Disabled {
                    input: input.into(),
                });
            }
            FilePolicy::Root(root) if path.is_relative() => root.join(path),
            _ => path.to_path_buf(),
        };
        let canonical = std::fs::canonicalize(&candidate).map_err(|_| FileError::NotFound {
            input: input.into(),
        })?;
        if let FilePolicy::Root(root) = self
            && !canonical.starts_with(root)
        {
            return Err(FileError::OutsideRoot {
                input: input.into(),
            });
        }
        Ok(canonical)
    }

    fn read(&self, input: &str, limit: u64) -> Result<(PathBuf, Vec<u8>), FileError> {
        let path = self.resolve(input)?;
        self.read_resolved(input, path, limit)
    }

    /// Opens and reads what [`FilePolicy::resolve`] found, checking the opened handle.
    fn read_resolved(
        &self,
        input: &str,
        path: PathBuf,
        limit: u64,
    ) -> Result<(PathBuf, Vec<u8>), FileError> {
        let not_found = || FileError::NotFound {
            input: input.into(),
        };
        let file = File::open(&path).map_err(|_| not_found())?;
        if let FilePolicy::Root(root) = self
            && !opened_path(&file, &path).is_some_and(|p| p.starts_with(root))
        {
            return Err(FileError::OutsideRoot {
                input: input.into(),
            });
        }
        let meta = file.metadata().map_err(|_| not_found())?;
        if !meta.is_file() {
            return Err(FileError::NotAFile {
                input: input.into(),
            });
        }
        let too_large = |size| FileError::TooLarge {
            input: input.into(),
            size,
            limit,
        };
        if meta.len() > limit {
            return Err(too_large(meta.len()));
        }
        // The file may grow after the check: never read more than the limit.
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| not_found())?;
        if bytes.len() as u64 > limit {
            return Err(too_large(bytes.len() as u64));
        }
        Ok((path, bytes))
    }
}

/// Where the opened file really is: what the kernel says about the handle (`/proc/self/fd`),
/// else — without procfs — the path resolved again.
fn opened_path(file: &File, path: &Path) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            return Some(real);
        }
    }
    let _ = file;
    std::fs::canonicalize(path).ok()
}

/// A `data:` URL split into MIME type and decoded bytes.
fn parse_data_url(input: &str) -> Option<(String, Vec<u8>)> {
    let rest = input.strip_prefix("data:")?;
    let (header, payload) = rest.split_once(',')?;
    let mut fields = header.split(';');
    let mime = fields
        .next()
        .filter(|m| !m.is_empty())
        .unwrap_or("text/plain");
    let is_base64 = fields.any(|f| f.eq_ignore_ascii_case("base64"));
    let bytes = if is_base64 {
        BASE64.decode(payload.trim()).ok()?
    } else {
        percent_decode(payload)?
    };
    Some((mime.to_ascii_lowercase(), bytes))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

fn image_type_of(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

fn short(input: &str) -> String {
    if input.starts_with("data:") {
        let end = input.find(',').unwrap_or(input.len()).min(40);
        format!("{}…", &input[..end])
    } else {
        input.chars().take(200).collect()
    }
}

/// The context assembled from a call's `files` and `images`.
#[derive(Debug, Default)]
pub struct Attachments {
    /// One text part with every file's content, then one part per image.
    pub parts: Vec<Part>,
    pub errors: Vec<FileError>,
}

/// A text file, whole or the lines `path:START-END` (or `path:LINE`) name: the label for the
/// context and the content. A path that exists as written is read whole, even if it ends like
/// a range.
fn read_text(policy: &FilePolicy, input: &str) -> Result<(String, String), FileError> {
    let (path, range) = match split_line_range(input) {
        Some((path, range)) if policy.resolve(input).is_err() => (path, Some(range)),
        _ => (input, None),
    };
    let (resolved, bytes) = policy.read(path, MAX_TEXT_FILE_BYTES)?;
    let content = String::from_utf8(bytes).map_err(|_| FileError::NotText {
        input: short(input),
    })?;
    let label = resolved.display().to_string();
    let Some((first, last)) = range else {
        return Ok((label, content));
    };
    let total = content.lines().count();
    let last = last.min(total);
    if first > total {
        return Err(FileError::BadLineRange {
            input: short(input),
            lines: total,
        });
    }
    let slice: Vec<&str> = content
        .lines()
        .skip(first - 1)
        .take(last + 1 - first)
        .collect();
    Ok((
        format!("{label}, lines {first}-{last} of {total}"),
        slice.join("\n") + "\n",
    ))
}

/// `path:START-END` or `path:LINE`, or later converse versions' `path{START:END}`, `path{START:}`
/// and `path{:END}` (1-based, inclusive; START ≤ END) split into the path and the range; `None`
/// when `input` does not end like that.
fn split_line_range(input: &str) -> Option<(&str, (usize, usize))> {
    if let Some(braced) = input.strip_suffix('}') {
        let (path, range) = braced.rsplit_once('{')?;
        let (a, b) = range.split_once(':')?;
        let first = if a.is_empty() { 1 } else { a.parse().ok()? };
        let last = if b.is_empty() {
            usize::MAX
        } else {
            b.parse().ok()?
        };
        return (!path.is_empty() && first >= 1 && first <= last).then_some((path, (first, last)));
    }
    let (path, range) = input.rsplit_once(':')?;
    let (first, last) = match range.split_once('-') {
        Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
        None => {
            let line = range.parse::<usize>().ok()?;
            (line, line)
        }
    };
    (!path.is_empty() && first >= 1 && first <= last).then_some((path, (first, last)))
}

/// [`gather`] on tokio's blocking pool.
pub async fn gather_blocking(
    policy: &FilePolicy,
    files: &[String],
    images: &[String],
) -> Attachments {
    if files.is_empty() && images.is_empty() {
        return Attachments::default();
    }
    let (policy, files, images) = (policy.clone(), files.to_vec(), images.to_vec());
    tokio::task::spawn_blocking(move || gather(&policy, &files, &images))
        .await
        .unwrap_or_else(|_| Attachments {
            parts: Vec::new(),
            errors: vec![FileError::Interrupted],
        })
}

/// Reads every file and image. Each input is independent: one bad file is
/// reported without failing the others, and the caller decides what to do.
pub fn gather(policy: &FilePolicy, files: &[String], images: &[String]) -> Attachments {
    let mut out = Attachments::default();
    let mut total: u64 = 0;
    let mut text = String::new();
    for input in files {
        let result = if input.starts_with("data:") {
            parse_data_url(input)
                .ok_or_else(|| FileError::BadDataUrl {
                    input: short(input),
                })
                .and_then(|(_, bytes)| {
                    String::from_utf8(bytes).map_err(|_| FileError::NotText {
                        input: short(input),
                    })
                })
                .map(|content| ("inline content".to_string(), content))
        } else if input.contains('\n') {
            // A multi-line string cannot be a path: it is inline text.
            Ok(("inline text".to_string(), input.clone()))
        } else {
            read_text(policy, input)
        };
        match result {
            Ok((label, content)) => {
                total += content.len() as u64;
                if total > MAX_TOTAL_BYTES {
                    out.errors.push(FileError::TotalTooLarge {
                        limit: MAX_TOTAL_BYTES,
                    });
                    break;
                }
                text.push_str(&format!(
                    "--- {label} ({} lines) ---\n{content}\n",
                    content.lines().count()
                ));
            }
            Err(e) => out.errors.push(e),
        }
    }
    if !text.is_empty() {
        out.parts.push(Part::Text {
            text: format!("=== FILE CONTEXT ===\n{text}=== END FILE CONTEXT ==="),
        });
    }
    for input in images {
        let result = if input.starts_with("data:") {
            parse_data_url(input)
                .ok_or_else(|| FileError::BadDataUrl {
                    input: short(input),
                })
                .and_then(|(mime, bytes)| match mime.as_str() {
                    "image/png" | "image/jpeg" | "image/gif" | "image/webp" => Ok((mime, bytes)),
                    _ => Err(FileError::UnsupportedImage {
                        input: short(input),
                    }),
                })
        } else {
            policy
                .read(input, MAX_IMAGE_BYTES)
                .and_then(|(path, bytes)| {
                    image_type_of(&path)
                        .map(|m| (m.to_string(), bytes))
                        .ok_or_else(|| FileError::UnsupportedImage {
                            input: short(input),
                        })
                })
        };
        match result {
            Ok((media_type, bytes)) => {
                total += bytes.len() as u64;
                if total > MAX_TOTAL_BYTES {
                    out.errors.push(FileError::TotalTooLarge {
                        limit: MAX_TOTAL_BYTES,
                    });
                    break;
                }
                out.parts.push(Part::Image {
                    media_type,
                    data: BASE64.encode(bytes),
                });
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempTree(PathBuf);
    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree() -> TempTree {
        let base =
            std::env::temp_dir().join(format!("files-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(base.join("root/sub")).unwrap();
        std::fs::write(base.join("root/sub/a.txt"), "hello\nworld\n").unwrap();
        std::fs::write(base.join("secret.txt"), "top secret").unwrap();
        std::fs::write(base.join("root/pic.png"), [0x89, b'P', b'N', b'G']).unwrap();
        std::fs::write(base.join("root/bin.dat"), [0xff, 0xfe, 0x00]).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), base.join("root/link.txt")).unwrap();
        TempTree(base)
    }

    fn text_of(a: &Attachments) -> String {
        match &a.parts[0] {
            Part::Text { text } => text.clone(),
            Part::Image { .. } => panic!("expected text"),
        }
    }

    #[test]
    fn reads_under_root_by_relative_and_absolute_path() {
        let t = tree();
        let policy = FilePolicy::new(Some(&t.0.join("root")), false).unwrap();
        let abs = t.0.join("root/sub/a.txt").display().to_string();
        let a = gather(&policy, &["sub/a.txt".into(), abs], &[]);
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        assert_eq!(text_of(&a).matches("hello\nworld").count(), 2);
    }

    #[test]
    fn refuses_dotdot_and_symlink_escapes() {
        let t = tree();
        let policy = FilePolicy::new(Some(&t.0.join("root")), false).unwrap();
        let a = gather(
            &policy,
            &[
                "../secret.txt".into(),
                "sub/../../secret.txt".into(),
                "link.txt".into(),
                t.0.join("secret.txt").display().to_string(),
            ],
            &[],
        );
        assert!(a.parts.is_empty());
        assert_eq!(a.errors.len(), 4);
        assert!(
            a.errors
                .iter()
                .all(|e| matches!(e, FileError::OutsideRoot { .. })),
            "{:?}",
            a.errors
        );
    }

    #[test]
    fn line_ranges_select_lines() {
        let t = tree();
        std::fs::write(
            t.0.join("root/ten.txt"),
            (1..=10).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .unwrap();
        std::fs::write(t.0.join("root/odd:2-3"), "a file named like a range\n").unwrap();
        let policy = FilePolicy::new(Some(&t.0.join("root")), false).unwrap();
        let text = |input: &str| text_of(&gather(&policy, &[input.to_string()], &[]));
        let range = text("ten.txt:3-5");
        assert!(range.contains("lines 3-5 of 10"), "{range}");
        assert!(
            range.contains("line 3\nline 4\nline 5\n") && !range.contains("line 6"),
            "{range}"
        );
        assert!(text("ten.txt:7").contains("line 7\n"));
        assert!(text("ten.txt:9-99").contains("lines 9-10 of 10"));
        assert!(text("ten.txt{3:5}").contains("lines 3-5 of 10"));
        assert!(text("ten.txt{8:}").contains("lines 8-10 of 10"));
        assert!(text("ten.txt{:2}").contains("lines 1-2 of 10"));
        assert!(
            text("odd:2-3").contains("a file named like a range"),
            "exists as written"
        );
        let past = gather(&policy, &["ten.txt:11-12".to_string()], &[]);
        assert!(matches!(
            past.errors[..],
            [FileError::BadLineRange { lines: 10, .. }]
        ));
        assert_eq!(split_line_range("a.txt:5-2"), None);
        assert_eq!(split_line_range("a.txt:0-2"), None);
        assert_eq!(split_line_range("C:/x"), None);
    }

    /// A directory swapped for a symlink to outside between the root check and the open: the
    /// opened file is checked where it really is, and refused.
    #[test]
    fn a_path_swapped_after_the_check_is_refused() {
        let t = tree();
        let root = t.0.join("root");
        let policy = FilePolicy::new(Some(&root), false).unwrap();
        let checked = policy.resolve("sub/a.txt").expect("inside the root");
        std::fs::create_dir_all(t.0.join("outside")).unwrap();
        std::fs::write(t.0.join("outside/a.txt"), "top secret").unwrap();
        std::fs::rename(root.join("sub"), root.join("sub-old")).unwrap();
        std::os::unix::fs::symlink(t.0.join("outside"), root.join("sub")).unwrap();
        assert_eq!(
            policy.read_resolved("sub/a.txt", checked, MAX_TEXT_FILE_BYTES),
            Err(FileError::OutsideRoot {
                input: "sub/a.txt".into()
            })
        );
    }

    #[test]
    fn http_without_root_refuses_paths_but_takes_inline_content() {
        let t = tree();
        let policy = FilePolicy::new(None, false).unwrap();
        let a = gather(
            &policy,
            &[
                t.0.join("root/sub/a.txt").display().to_string(),
                "data:text/plain;base64,aW5saW5lIQ==".into(),
                "data:,percent%20encoded".into(),
                "line one\nline two".into(),
            ],
            &["data:image/png;base64,iVBORw0K".into()],
        );
        assert!(matches!(a.errors.as_slice(), [FileError::Disabled { .. }]));
        let text = text_of(&a);
        assert!(
            text.contains("inline!")
                && text.contains("percent encoded")
                && text.contains("line two")
        );
        assert!(matches!(&a.parts[1], Part::Image { media_type, .. } if media_type == "image/png"));
    }

    #[test]
    fn stdio_without_root_reads_anywhere() {
        let t = tree();
        let policy = FilePolicy::new(None, true).unwrap();
        let a = gather(
            &policy,
            &[t.0.join("secret.txt").display().to_string()],
            &[],
        );
        assert!(text_of(&a).contains("top secret"));
    }

    #[test]
    fn rejects_binary_missing_and_wrong_image_types() {
        let t = tree();
        let policy = FilePolicy::new(Some(&t.0.join("root")), false).unwrap();
        let a = gather(
            &policy,
            &["bin.dat".into(), "nope.txt".into(), "sub".into()],
            &[
                "pic.png".into(),
                "sub/a.txt".into(),
                "data:text/html,<b>".into(),
            ],
        );
        assert!(matches!(a.errors[0], FileError::NotText { .. }));
        assert!(matches!(a.errors[1], FileError::NotFound { .. }));
        assert!(matches!(a.errors[2], FileError::NotAFile { .. }));
        assert!(matches!(a.errors[3], FileError::UnsupportedImage { .. }));
        assert!(matches!(a.errors[4], FileError::UnsupportedImage { .. }));
        assert_eq!(a.parts.len(), 1, "only the png");
    }
}
