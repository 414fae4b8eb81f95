//! The failed tests of a nextest run, read back from its JUnit report
//! (`.config/nextest.toml` writes one) so the end of `cargo xtask test` can name them: a
//! CI log is often read from its tail, where the runs after the tests have pushed the
//! failures out of sight.

/// One failed test: which, why, and the end of what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `binary test`, as nextest names it.
    pub test: String,
    /// Nextest's kind of failure ("test failure with exit code 101", "test timeout"…).
    pub kind: String,
    /// The panic message, or the first lines of the failure's text.
    pub why: String,
    /// The last lines the test wrote to stderr before it failed (no backtrace).
    pub tail: Vec<String>,
    /// It failed, then passed when nextest ran it again.
    pub flaky: bool,
}

/// Lines of a failed test's stderr kept for the digest.
const TAIL_LINES: usize = 25;

/// The failed tests in a JUnit report's text, in report order, the flaky ones too.
pub fn failures(xml: &str) -> Vec<Failure> {
    let mut found = Vec::new();
    for case in xml.split("<testcase ").skip(1) {
        // A passing case closes itself (`<testcase … />`) before any child.
        let head_end = case.find('>').unwrap_or(case.len());
        if case[..head_end].ends_with('/') {
            continue;
        }
        let body = case.split("</testcase>").next().unwrap_or(case);
        // A test that failed and then passed on its retry (nextest's `retries`) has only
        // flaky failures: it is named too, as flaky.
        let Some(failure) = ["<failure", "<error", "<flakyFailure", "<flakyError"]
            .iter()
            .find_map(|tag| body.find(tag).map(|at| &body[at..]))
        else {
            continue;
        };
        let flaky = failure.starts_with("<flaky");
        let head = &case[..head_end];
        let test = format!(
            "{} {}",
            attribute(head, "classname").unwrap_or_default(),
            attribute(head, "name").unwrap_or_default()
        );
        let failure_head = &failure[..failure.find('>').unwrap_or(failure.len())];
        let kind = attribute(failure_head, "type").unwrap_or_default();
        let text = element_text(
            failure,
            failure_head.split_whitespace().next().unwrap_or(""),
        );
        let why = attribute(failure_head, "message")
            .filter(|m| !m.is_empty())
            .map(|message| {
                // The message is where it panicked; the text's next lines say what.
                let said: Vec<&str> = text
                    .lines()
                    .skip(1)
                    .take_while(|l| !l.starts_with("stack backtrace:"))
                    .take(8)
                    .collect();
                [message, said.join("\n")].join("\n").trim_end().to_string()
            })
            .unwrap_or_else(|| text.lines().take(8).collect::<Vec<_>>().join("\n"));
        // A flaky failure holds its own output; a failure's is the case's.
        let stderr = if flaky {
            element_text(failure, "<system-err")
        } else {
            element_text(body, "<system-err")
        };
        let before_panic: Vec<&str> = stderr
            .lines()
            .take_while(|l| !(l.starts_with("thread '") && l.contains("panicked at")))
            .collect();
        let tail = before_panic[before_panic.len().saturating_sub(TAIL_LINES)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
        found.push(Failure {
            test,
            kind,
            why,
            tail,
            flaky,
        });
    }
    found
}

/// The unescaped value of `name="…"` in an element's opening tag.
fn attribute(head: &str, name: &str) -> Option<String> {
    // The opening tag as cut here may start at its first attribute.
    let head = format!(" {head}");
    let key = format!(" {name}=\"");
    let start = head.find(&key)? + key.len();
    let len = head[start..].find('"')?;
    Some(unescape(&head[start..start + len]))
}

/// The unescaped text of the first element opened by `open` (`<system-err`…) in `xml`.
fn element_text(xml: &str, open: &str) -> String {
    let Some(at) = xml.find(open) else {
        return String::new();
    };
    let rest = &xml[at..];
    let Some(gt) = rest.find('>') else {
        return String::new();
    };
    if rest[..gt].ends_with('/') {
        return String::new();
    }
    let close = format!("</{}>", open.trim_start_matches('<'));
    let text = &rest[gt + 1..];
    unescape(&text[..text.find(&close).unwrap_or(text.len())])
}

/// XML's five entities and numeric character references.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&end| end <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as nextest 0.9 writes it: one pass, one panic, one timeout.
    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="2">
    <testsuite name="jt" tests="3" failures="2">
        <testcase name="ok" classname="jt" time="0.006"/>
        <testcase name="m::bad" classname="tandem-tests::e2e" time="0.102">
            <failure message="thread &apos;m::bad&apos; (28402) panicked at src/lib.rs:2:75" type="test failure with exit code 101">thread &apos;m::bad&apos; (28402) panicked at src/lib.rs:2:75:
boom &quot;here&quot; &lt;x&gt; &#233;
stack backtrace:
   0: __rustc::rust_begin_unwind</failure>
            <system-out>out line</system-out>
            <system-err>agent: connected &amp; sharing

thread &apos;m::bad&apos; (28402) panicked at src/lib.rs:2:75:
boom
</system-err>
        </testcase>
        <testcase name="shaky" classname="jt" time="2">
            <flakyFailure message="thread &apos;shaky&apos; panicked at a.rs:1:1" type="test failure with exit code 101">thread &apos;shaky&apos; panicked at a.rs:1:1:
no picture
stack backtrace:
                <system-err>waited 30 s
</system-err>
            </flakyFailure>
            <system-err>passed
</system-err>
        </testcase>
        <testcase name="slow" classname="jt" time="300">
            <failure type="test timeout"/>
            <system-err>waiting for the picture
</system-err>
        </testcase>
    </testsuite>
</testsuites>"#;

    #[test]
    fn the_failed_tests_are_named_with_why_and_their_last_words() {
        let found = failures(REPORT);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(!found[0].flaky);
        assert_eq!(found[1].test, "jt shaky");
        assert!(found[1].flaky);
        assert_eq!(
            found[1].why,
            "thread 'shaky' panicked at a.rs:1:1\nno picture"
        );
        assert_eq!(found[1].tail, ["waited 30 s"]);
        let found = [found[0].clone(), found[2].clone()];
        assert_eq!(found[0].test, "tandem-tests::e2e m::bad");
        assert_eq!(found[0].kind, "test failure with exit code 101");
        assert_eq!(
            found[0].why,
            "thread 'm::bad' (28402) panicked at src/lib.rs:2:75\nboom \"here\" <x> é"
        );
        assert_eq!(found[0].tail, ["agent: connected & sharing", ""]);
        assert_eq!(found[1].test, "jt slow");
        assert_eq!(found[1].kind, "test timeout");
        assert_eq!(found[1].tail, ["waiting for the picture"]);
    }

    #[test]
    fn a_stray_ampersand_is_kept() {
        assert_eq!(unescape("a & b &amp; c &bogus; d"), "a & b & c &bogus; d");
    }

    #[test]
    fn a_report_with_no_failure_has_none() {
        let passing =
            r#"<testsuites><testsuite><testcase name="a" classname="b"/></testsuite></testsuites>"#;
        assert!(failures(passing).is_empty());
    }
}
