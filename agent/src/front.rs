//! Where the agent talks with the customer: its window ([`crate::ui`]) or, with `--cli`,
//! the terminal ([`crate::consent::Terminal`]). The driver (`main.rs`) says the same things
//! to either; each shows them its way, in the customer's language.

use tokio::sync::mpsc;

use crate::consent;
use crate::flow::Question;
use crate::text::{Language, Text};
use crate::ui::{self, Action};

/// Why the agent stopped before or without a session, in words for the customer.
#[derive(Debug)]
pub enum Failure {
    /// A sentence from the catalogue.
    Said(Text),
    /// The server refused the attach with `message`; `said`: the catalogue's sentence for
    /// it where there is one (the download's token ran out or was used). The join page
    /// (`page`) gives a new download.
    Refused {
        message: String,
        said: Option<Text>,
        page: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let english = Language::for_locale("en", crate::text::Surface::Terminal);
        match self {
            Failure::Said(text) => f.write_str(&english.say(text)),
            Failure::Refused {
                said: Some(text), ..
            } => f.write_str(&english.say(text)),
            Failure::Refused { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Failure {}

/// What the customer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Did {
    /// Answered the open question; with a window, `source` is the index of the choice
    /// offered with a share question.
    Answer {
        yes: bool,
        source: Option<usize>,
    },
    StopSharing,
    TakeBack,
    /// Cancelled the files coming in (and going out).
    CancelFiles,
    /// Picked a file for a rep who asked for one (none: no).
    Picked(Option<std::path::PathBuf>),
    Leave,
}

pub struct Front {
    language: Language,
    kind: Kind,
    /// The last sentence told, for the end screen.
    last: Option<String>,
    /// What was last shown of the files coming in: the first one's name, its whole
    /// percent, and how many come. Shown again only when that changes (not per chunk).
    incoming: Option<(String, u64, usize)>,
    /// The open question asks for a file's path.
    picking: bool,
}

enum Kind {
    Terminal(consent::Terminal),
    Window {
        handle: ui::Handle,
        actions: mpsc::UnboundedReceiver<Action>,
    },
}

impl Front {
    pub fn terminal(language: Language) -> Self {
        Self {
            language,
            kind: Kind::Terminal(consent::Terminal::start()),
            last: None,
            incoming: None,
            picking: false,
        }
    }

    pub fn window(
        language: Language,
        handle: ui::Handle,
        actions: mpsc::UnboundedReceiver<Action>,
    ) -> Self {
        Self {
            language,
            kind: Kind::Window { handle, actions },
            last: None,
            incoming: None,
            picking: false,
        }
    }

    pub fn say(&self, text: &Text) -> String {
        self.language.say(text)
    }

    pub fn is_window(&self) -> bool {
        matches!(self.kind, Kind::Window { .. })
    }

    /// The next thing the customer does. `asking`: whether a question is open (in the
    /// terminal, a line then answers it).
    pub async fn next(&mut self, asking: bool) -> Did {
        match &mut self.kind {
            Kind::Terminal(terminal) => match terminal.line().await {
                None if self.picking => Did::Picked(None),
                None => Did::Answer {
                    yes: false,
                    source: None,
                },
                Some(line) if asking && self.picking => {
                    // A path, as typed or pasted (quotes a file manager adds go).
                    let path = line.trim().trim_matches(['"', '\'']);
                    Did::Picked((!path.is_empty()).then(|| std::path::PathBuf::from(path)))
                }
                Some(line) if asking => Did::Answer {
                    yes: consent::yes(&line),
                    source: None,
                },
                Some(line) if line.trim().eq_ignore_ascii_case("r") => Did::TakeBack,
                // `c` cancels the files coming in, and never stops sharing: typed a
                // moment after the file ended, it finds nothing to cancel.
                Some(line) if line.trim().eq_ignore_ascii_case("c") => Did::CancelFiles,
                Some(_) => Did::StopSharing,
            },
            Kind::Window { actions, .. } => match actions.recv().await {
                Some(Action::Answer { yes, source }) => Did::Answer {
                    yes,
                    source: Some(source),
                },
                Some(Action::StopSharing) => Did::StopSharing,
                Some(Action::TakeBack) => Did::TakeBack,
                Some(Action::CancelFiles) => Did::CancelFiles,
                Some(Action::Picked(path)) => Did::Picked(path),
                Some(Action::Close) => Did::Leave,
                None => std::future::pending().await,
            },
        }
    }

    /// A sentence for the customer (also on stderr with a window, for logs and tests).
    pub fn tell(&mut self, text: &Text) {
        let words = self.say(text);
        eprintln!("{words}");
        if let Kind::Window { handle, .. } = &self.kind {
            handle.detail(words.clone());
        }
        self.last = Some(words);
    }

    /// A heading (the session, or where it connects) with a sentence under it.
    pub fn status(&mut self, heading: &Text, detail: &Text) {
        let (heading, detail) = (self.say(heading), self.say(detail));
        eprintln!("{detail}");
        if let Kind::Window { handle, .. } = &self.kind {
            handle.status(heading, detail);
        }
    }

    /// Ask `question`; `sources` are the choices of what to share (with a window). The
    /// terminal answers `Some(false)` at once when nobody can type.
    pub fn ask(&mut self, question: &Question, text: &Text, sources: Vec<String>) -> Option<bool> {
        let words = self.say(text);
        self.picking = matches!(question, Question::Pick { .. });
        if self.picking {
            match &mut self.kind {
                Kind::Terminal(terminal) => {
                    // Nobody can type: no file goes.
                    return terminal
                        .ask(&words, &self.language.say(&Text::new("prompt-path")))
                        .map(|_| false);
                }
                Kind::Window { handle, .. } => {
                    eprintln!("{words}");
                    handle.ask_path(
                        words,
                        self.language.say(&Text::new("button-send-file")),
                        self.language.say(&Text::new("path-placeholder")),
                    );
                    return None;
                }
            }
        }
        match &mut self.kind {
            Kind::Terminal(terminal) => {
                terminal.ask(&words, &self.language.say(&Text::new("prompt-yes-no")))
            }
            Kind::Window { handle, .. } => {
                eprintln!("{words}");
                let allow = match question {
                    Question::Share => "button-share",
                    Question::Control { .. } | Question::File { .. } | Question::Pick { .. } => {
                        "button-allow"
                    }
                };
                handle.ask(words, self.language.say(&Text::new(allow)), sources);
                None
            }
        }
    }

    /// The files coming in (none: nothing comes): with a window, a line with progress and
    /// Cancel on the panel; in the terminal, a sentence when a file starts to come. Called
    /// after every file event; only a change of what is shown reaches the window.
    pub fn incoming(&mut self, incoming: Option<&crate::files::Incoming>) {
        let Some(i) = incoming else {
            if self.incoming.take().is_some()
                && let Kind::Window { handle, .. } = &self.kind
            {
                handle.incoming(None);
            }
            return;
        };
        let percent = i
            .received
            .saturating_mul(100)
            .checked_div(i.size)
            .unwrap_or(100);
        let shown = (i.name.clone(), percent, i.count);
        if self.incoming.as_ref() == Some(&shown) {
            return;
        }
        let new_file = self
            .incoming
            .as_ref()
            .is_none_or(|(name, ..)| *name != i.name);
        let size = crate::flow::human_size(i.size);
        match &self.kind {
            Kind::Window { handle, .. } => {
                let text = if i.sending {
                    Text::new("file-outgoing")
                } else if i.count > 1 {
                    Text::new("file-incoming-more").arg("more", (i.count - 1).to_string())
                } else {
                    Text::new("file-incoming")
                };
                let text = text
                    .arg("name", i.name.as_str())
                    .arg("size", size)
                    .arg("percent", percent.to_string());
                let words = self.say(&text);
                if new_file {
                    // Once per file on stderr too, for logs and tests.
                    eprintln!("{words}");
                }
                handle.incoming(Some((words, percent as f32 / 100.0)));
            }
            Kind::Terminal(_) => {
                if new_file {
                    let key = if i.sending {
                        "file-outgoing-terminal"
                    } else {
                        "file-incoming-terminal"
                    };
                    let text = Text::new(key)
                        .arg("name", i.name.as_str())
                        .arg("size", size);
                    eprintln!("{}", self.say(&text));
                }
            }
        }
        self.incoming = Some(shown);
    }

    /// No question is open any more.
    pub fn asked(&self, sharing: bool) {
        if let Kind::Window { handle, .. } = &self.kind {
            handle.asked(sharing);
        }
    }

    /// The sharing panel: what is shared, who controls, who watches.
    pub fn panel(&self, badge: &Text, controlled: bool, watching: &Text) {
        if let Kind::Window { handle, .. } = &self.kind {
            handle.panel(self.say(badge), controlled, self.say(watching));
        }
    }

    /// What is shared, for the frame the window draws around it (`None`: no frame).
    pub fn framed(&self, source: Option<tandem_capture::Source>) {
        if let Kind::Window { handle, .. } = &self.kind {
            handle.framed(source);
        }
    }

    pub fn not_sharing(&self) {
        if let Kind::Window { handle, .. } = &self.kind {
            handle.not_sharing();
        }
    }

    /// The end, with why (the window stays until the customer closes it).
    pub fn finish(&mut self, result: &anyhow::Result<()>) {
        let Kind::Window { handle, .. } = &self.kind else {
            return;
        };
        let (heading, detail, page) = match result {
            Ok(()) => (
                self.language.say(&Text::new("ended-heading")),
                self.last.clone().unwrap_or_default(),
                None,
            ),
            Err(e) => {
                let heading = self.language.say(&Text::new("error-heading"));
                let open = |page: &str| {
                    Some((
                        self.language.say(&Text::new("button-open-page")),
                        page.to_owned(),
                    ))
                };
                match e.downcast_ref::<Failure>() {
                    Some(Failure::Said(text)) => (heading, self.language.say(text), None),
                    Some(Failure::Refused {
                        said: Some(text),
                        page,
                        ..
                    }) => (heading, self.language.say(text), open(page)),
                    Some(Failure::Refused { message, page, .. }) => {
                        (heading, message.clone(), open(page))
                    }
                    None => (heading, format!("{e:#}"), None),
                }
            }
        };
        handle.ended(heading, detail, page);
    }
}
