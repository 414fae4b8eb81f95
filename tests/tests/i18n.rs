//! Languages (docs/i18n.md): the console in Norwegian Bokmål from login to a shared screen
//! (its notices turning English when the rep switches), the agent under a Norwegian locale,
//! and a Norwegian rep's invitation arriving in Norwegian in a real mailbox.
//!
//! The rep's Chromium runs with `--lang=nb` (the browser's language decides); the customer's
//! runs in English and she picks Bokmål in the header (her choice decides, and is kept). On
//! every page the test reads every visible text, placeholder and label and fails on any that
//! is an English message of the console's catalogues (`web/locales/en/*.ftl`, placeables
//! standing for any text), on any that is a bare message id, and on an `<html lang>` other
//! than `nb`. Screenshots: target/e2e-artifacts/i18n*/.

use anyhow::Context;
use serde_json::{Value, json};
use tandem_tests::agent_window::{self, Desk};
use tandem_tests::nat_scene::{decoded_pixel, near};
use tandem_tests::{
    AgentProcess, Browser, Chromedriver, PatternDisplay, QUADRANTS, Server, SmtpSink,
};

/// Texts that are the same in English and Bokmål, so the check lets them be.
const SAME_IN_BOTH: &[(&str, &str)] = &[
    (
        "Send",
        "the chat's button: Bokmål's imperative of «sende» is «send» as well",
    ),
    (
        "agent",
        "the participants' tag for Tandem's agent program: the same word in Bokmål",
    ),
    ("OK", "the invite dialog's button"),
    ("WebACD", "a product name"),
    (
        "123 456 789",
        "the example session number in the number fields' placeholders",
    ),
];

/// Chromium whose language is Norwegian Bokmål (navigator.languages and Accept-Language).
fn norwegian() -> Vec<String> {
    vec!["--lang=nb".to_owned(), "--accept-lang=nb,en".to_owned()]
}

/// Reads the page as a person would and returns what is still English: `{lang, english:
/// [[text, message id]], ids: [text]}`. The English messages are the server's own
/// catalogues, parsed with the console's Fluent; each becomes a pattern where a placeable is
/// any text and a selection any of its variants. Messages that could match a bare name (no
/// words of their own) are left out; names, numbers and chat lines match nothing else.
const ENGLISH_ON_PAGE: &str = r#"
const [sameInBoth, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const { FluentResource } = await import('/assets/js/vendor/fluent-bundle.js');
  const catalogues = await Promise.all(['console', 'download'].map((f) =>
    fetch(`/assets/locales/en/${f}.ftl`).then((r) => (r.ok ? r.text() : ''))));
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
  // [regular expression source, how many letters of its own the shortest variant has]
  const pattern = (p) => {
    if (typeof p === 'string') return [escape(p), p.replace(/[^\p{L}]/gu, '').length];
    let source = '';
    let letters = 0;
    for (const el of p) {
      if (typeof el === 'string' || el.type === 'str') {
        const s = typeof el === 'string' ? el : el.value;
        source += escape(s);
        letters += s.replace(/[^\p{L}]/gu, '').length;
      } else if (el.type === 'select') {
        const variants = el.variants.map((v) => pattern(v.value));
        source += `(?:${variants.map((v) => v[0]).join('|')})`;
        letters += Math.min(...variants.map((v) => v[1]));
      } else {
        source += '.+?';
      }
    }
    return [source, letters];
  };
  const english = [];
  const ids = new Set();
  for (const text of catalogues) {
    for (const message of new FluentResource(text).body) {
      ids.add(message.id);
      for (const p of [message.value, ...Object.values(message.attributes)]) {
        if (!p) continue;
        const [source, letters] = pattern(p);
        if (letters >= 2) english.push([new RegExp(`^${source}$`, 'u'), message.id]);
      }
    }
  }
  const shown = (el) => el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden'
    && !el.closest('[hidden], #language, .brand, script, style, title');
  const texts = [['<title>', document.title]];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (shown(node.parentElement)) texts.push([node.parentElement.tagName.toLowerCase(), node.data]);
  }
  for (const el of document.body.querySelectorAll('[placeholder], [title], [aria-label]')) {
    if (!shown(el)) continue;
    for (const name of ['placeholder', 'title', 'aria-label']) {
      if (el.hasAttribute(name)) texts.push([`${el.tagName.toLowerCase()}[${name}]`, el.getAttribute(name)]);
    }
  }
  const found = { lang: document.documentElement.lang, english: [], ids: [], checked: 0 };
  for (const [where, raw] of texts) {
    const text = raw.replace(/\s+/g, ' ').trim();
    if (!/\p{L}/u.test(text) || sameInBoth.includes(text)) continue;
    found.checked += 1;
    if (ids.has(text)) found.ids.push(`${where}: ${text}`);
    const hit = english.find(([re]) => re.test(text));
    if (hit) found.english.push(`${where}: ${text} (${hit[1]})`);
  }
  return found;
})().then(done, (e) => done({ error: String(e) }));
"#;

/// What [`ENGLISH_ON_PAGE`] finds on `person`'s page now.
async fn english_on_page(person: &Browser) -> anyhow::Result<Value> {
    let same: Vec<Value> = SAME_IN_BOTH.iter().map(|(text, _)| json!(text)).collect();
    let found = person
        .client
        .execute_async(ENGLISH_ON_PAGE, vec![Value::Array(same)])
        .await?;
    anyhow::ensure!(found["error"].is_null(), "{}: {found}", person.person);
    Ok(found)
}

/// Fails if anything on `person`'s page is English, a bare message id, or if the page does
/// not say it is Bokmål; `step` names the screenshot.
async fn speaks_norwegian(person: &Browser, step: &str) -> anyhow::Result<()> {
    person.find("html[lang=nb]").await?;
    person.screenshot(step).await?;
    let found = english_on_page(person).await?;
    anyhow::ensure!(
        found["checked"].as_u64().unwrap_or(0) > 0,
        "{}: {step}: no text was read: {found}",
        person.person
    );
    anyhow::ensure!(
        found["lang"] == "nb" && found["english"] == json!([]) && found["ids"] == json!([]),
        "{}: {step}: still English or untranslated: {found}",
        person.person
    );
    Ok(())
}

/// The customer's explicit choice, in the header's language picker.
async fn choose_language(person: &Browser, lang: &str) -> anyhow::Result<()> {
    person
        .find("#language")
        .await?
        .select_by_value(lang)
        .await?;
    person.find(&format!("html[lang={lang}]")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_speaks_norwegian_from_login_to_a_shared_screen() -> anyhow::Result<()> {
    let screen = PatternDisplay::start(640, 480)?;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("i18n").await?;

    // The rep's browser is Norwegian: login, dashboard and the new session speak Bokmål.
    let rep = chrome.media_browser_with("rep", &norwegian()).await?;
    rep.goto(&format!("{}/login", server.base)).await?;
    speaks_norwegian(&rep, "01-login").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    speaks_norwegian(&rep, "02-dashboard").await?;
    let (_, link) = rep.start_session(false).await?;
    speaks_norwegian(&rep, "03-session").await?;

    // The customer's browser is English; she picks Bokmål, and it stays picked.
    let ann = chrome.media_browser("ann").await?;
    ann.goto(&link).await?;
    ann.find("html[lang=en]").await?;
    ann.wait_text("#join-button", "Join session").await?;
    // The check finds English where there is English (else its silence below means nothing).
    let english = english_on_page(&ann).await?;
    anyhow::ensure!(
        english["english"]
            .to_string()
            .contains("Join session (join-submit)"),
        "the English join page was not seen as English: {english}"
    );
    choose_language(&ann, "nb").await?;
    ann.goto(&link).await?;
    speaks_norwegian(&ann, "04-join").await?;
    ann.fill("#name", "Ann").await?;
    ann.click("#join-button").await?;
    ann.find("#in-session").await?;
    rep.wait_text("#participants", "Ann").await?;
    speaks_norwegian(&ann, "05-customer-in-session").await?;
    speaks_norwegian(&rep, "06-rep-with-customer").await?;

    // Chat, in both directions.
    rep.fill("#chat-text", "Hei Ann, hva kan jeg hjelpe deg med?")
        .await?;
    rep.click("#chat-send").await?;
    ann.wait_text("#messages", "hva kan jeg hjelpe deg med")
        .await?;
    ann.fill("#chat-text", "Skriveren min virker ikke").await?;
    ann.click("#chat-send").await?;
    rep.wait_text("#messages", "Skriveren min virker ikke")
        .await?;
    speaks_norwegian(&ann, "07-customer-chat").await?;
    speaks_norwegian(&rep, "08-rep-chat").await?;

    // The customer attaches the agent with the command her page shows (behind "Advanced"
    // when the page offers a download first); after her consent the rep sees her screen,
    // captioned in Bokmål.
    let token = ann.attach_command_token().await?;
    let mut agent = AgentProcess::spawn(
        &screen.display,
        &["attach", "--server", &server.base, "--token", &token],
    )?;
    rep.wait_text("#participants li[data-name=Ann]", "agent")
        .await?;
    agent.answer("y").await?;
    rep.wait_text("figure.tile figcaption", "Skjermen til Ann · 640×480")
        .await?;
    let got = decoded_pixel(&rep, 160, 120).await?;
    anyhow::ensure!(
        near(got, QUADRANTS[0]),
        "the rep decodes {got:06x} where the pattern has {:06x}",
        QUADRANTS[0]
    );
    speaks_norwegian(&rep, "09-rep-sees-the-screen").await?;
    speaks_norwegian(&ann, "10-customer-sharing").await?;

    // A notice says what happened in the rep's language, and again in the new one when
    // she switches.
    rep.click("#request-control").await?;
    agent
        .wait_for("asks to control your mouse and keyboard")
        .await?;
    agent.answer("n").await?;
    rep.wait_text("#notices", "Ann ville ikke gi fra seg kontrollen.")
        .await?;
    choose_language(&rep, "en").await?;
    rep.wait_text("#notices", "Ann declined to give control.")
        .await?;

    agent.kill();
    for browser in [rep, ann] {
        browser.close().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_norwegian_reps_invitation_arrives_in_norwegian() -> anyhow::Result<()> {
    let smtp = SmtpSink::start(SmtpSink::free_port()?).await?;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    server
        .admin_call(
            "PUT",
            "/api/admin/mail",
            json!({"host": "127.0.0.1", "port": smtp.port, "tls": "none",
                   "from": "Tandem Support <support@example.com>"}),
        )
        .await?;
    let chrome = Chromedriver::start("i18n-invitation").await?;
    let rep = chrome.media_browser_with("rep", &norwegian()).await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (number, link) = rep.start_session(true).await?;
    rep.find("#invite-dialog[open]").await?;
    speaks_norwegian(&rep, "01-invite-dialog").await?;
    rep.click("input[name=invitee][value=customer]").await?;
    rep.fill("#invite-address", "ann@example.com").await?;
    rep.click("#invite-ok").await?;
    rep.wait_text("#invitations", "sendt").await?;
    speaks_norwegian(&rep, "02-sent").await?;

    let mail = smtp.message(1).await?;
    let text = |field: &str| mail[field].as_str().unwrap_or_default().to_owned();
    assert_eq!(mail["recipients"], json!(["ann@example.com"]));
    assert_eq!(text("subject"), "Rita Rep inviterer deg til en støtteøkt");
    let body = text("text");
    assert!(body.starts_with("Hei,"), "{body}");
    assert!(body.contains(&format!("øktnummeret {number}")), "{body}");
    assert!(body.contains(&link), "{body}");
    let html = text("html");
    assert!(html.contains(">Bli med i økten</a>"), "{html}");
    assert!(
        !body.contains("invites you") && !html.contains("Hello"),
        "{body}\n{html}"
    );
    rep.close().await?;
    Ok(())
}

/// The literal English phrases of the agent's catalogue (agent/locales/en/agent.ftl): the
/// text between placeables, 12 characters or more, so a phrase found in the agent's output
/// means an English sentence reached the customer.
fn english_agent_phrases() -> anyhow::Result<Vec<String>> {
    let ftl = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/locales/en/agent.ftl"),
    )?;
    let mut phrases = Vec::new();
    for line in ftl.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        // `id = text`, a variant `[key] text` or `*[key] text`, or a continued line.
        let text = match line.split_once(" = ") {
            Some((id, text)) if !id.contains(' ') => text,
            _ => line
                .trim_start_matches('*')
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .map_or(line, |(_, text)| text),
        };
        let mut depth = 0;
        let mut literal = String::new();
        for c in text.chars() {
            match c {
                '{' => {
                    depth += 1;
                    phrases.push(std::mem::take(&mut literal));
                }
                '}' => depth -= 1,
                _ if depth == 0 => literal.push(c),
                _ => {}
            }
        }
        phrases.push(literal);
    }
    Ok(phrases
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| p.chars().count() >= 12)
        .collect())
}

/// The agent's own words in its output, English ones included: not its trace, not the
/// libraries' logs.
fn english_in(output: &str, phrases: &[String]) -> Vec<String> {
    output
        .lines()
        .filter(|l| !l.starts_with("[trace") && !l.starts_with("tandem-agent:"))
        .filter_map(|l| {
            phrases
                .iter()
                .find(|p| l.contains(p.as_str()))
                .map(|p| format!("{p:?} in {l:?}"))
        })
        .collect()
}

/// The agent under a Norwegian locale (`LANG=nb_NO.UTF-8`) speaks Bokmål from the join to
/// a shared screen and a refused control request: no English phrase of its catalogue in
/// anything it tells the customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_speaks_norwegian_under_a_norwegian_locale() -> anyhow::Result<()> {
    let phrases = english_agent_phrases()?;
    // The check sees English where there is English.
    anyhow::ensure!(
        !english_in(
            "Rita Rep asks to see your whole screen. Share it?",
            &phrases
        )
        .is_empty(),
        "the English question was not seen as English: {phrases:?}"
    );
    let screen = PatternDisplay::start(640, 480)?;
    let server = Server::start().await?;
    server
        .create_rep("rita", "Rita Rep", "rita-password")
        .await?;
    let chrome = Chromedriver::start("i18n-agent").await?;
    let rep = chrome.media_browser("rep").await?;
    rep.log_in(&server.base, "rita", "rita-password").await?;
    let (_, link) = rep.start_session(false).await?;
    let mut agent = AgentProcess::spawn_with_env(
        &screen.display,
        &["join", &link, "--name", "Ann"],
        &[("LANG", "nb_NO.UTF-8"), ("LC_ALL", "nb_NO.UTF-8")],
    )?;
    agent
        .wait_for("Rita Rep ber om å få se hele skjermen din. Vil du dele?")
        .await?;
    agent.wait_for("[j/N]").await?;
    agent.type_line("j").await?;
    rep.wait_text("figure.tile figcaption", "Ann's screen · 640×480")
        .await?;
    agent.wait_for("bilder/s").await?;
    rep.click("#request-control").await?;
    agent
        .wait_for("Rita Rep ber om å styre musen og tastaturet ditt")
        .await?;
    agent.wait_for("[j/N]").await?;
    agent.type_line("n").await?;
    rep.wait_text("#notices", "Ann declined to give control.")
        .await?;
    agent
        .wait_for("Rita Rep kan ikke styre datamaskinen din")
        .await?;
    let english = english_in(&agent.output(), &phrases);
    anyhow::ensure!(
        english.is_empty(),
        "the Norwegian agent said English: {english:#?}\n{}",
        agent.output()
    );
    agent.kill();
    rep.close().await?;
    Ok(())
}

/// A message of the agent's catalogue in `lang` (`agent/locales/<lang>/agent.ftl`), for the
/// one-line messages without placeables the window's labels are.
fn agent_message(lang: &str, id: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../agent/locales/{lang}/agent.ftl"));
    let ftl = std::fs::read_to_string(&path)?;
    ftl.lines()
        .find_map(|line| line.strip_prefix(&format!("{id} = ")))
        .map(|text| text.trim().to_owned())
        .with_context(|| format!("{} has no message {id}", path.display()))
}

/// The agent's window under a Norwegian locale, started from the download as a
/// double-click does: the question and every label the window holds (its buttons, the
/// choice, the panel's) are the Bokmål catalogue's, none the English one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_window_speaks_norwegian_under_a_norwegian_locale() -> anyhow::Result<()> {
    let screen = PatternDisplay::start(1024, 768)?;
    let (desk, rep) = Desk::open("i18n-window", None).await?;
    let ann = desk.chrome.browser("ann").await?;
    ann.join(&desk.link, "Ann").await?;
    let locale = std::ffi::OsStr::new("nb_NO.UTF-8");
    let mut agent = desk
        .start_agent_with(
            &ann,
            desk.downloads.path(),
            &screen.display,
            &[("LANG", locale), ("LC_ALL", locale)],
        )
        .await?;
    agent_window::wait_mode(&agent, "ask").await?;
    agent
        .wait_for("Rita Rep ber om å få se hele skjermen din. Vil du dele?")
        .await?;
    agent_window::photograph(&screen.display, &desk.photos, "01-asked-in-norwegian")?;
    let labels = agent_window::labels(&agent)
        .with_context(|| format!("the agent traced no labels:\n{}", agent.output()))?;
    let expected = [
        ("allow", "button-share"),
        ("deny", "button-deny"),
        ("choose", "choose-source"),
        ("stop", "button-stop"),
        ("take-back", "button-take-back"),
        ("close", "button-close"),
        ("about", "button-about"),
    ];
    anyhow::ensure!(
        labels.len() == expected.len(),
        "the window's labels were {labels:?}"
    );
    for (name, id) in expected {
        let (nb, en) = (agent_message("nb", id)?, agent_message("en", id)?);
        anyhow::ensure!(nb != en, "{id} is the same in both catalogues: {nb}");
        let shown = labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, text)| text.as_str());
        anyhow::ensure!(
            shown == Some(nb.as_str()),
            "the window's {name} label is {shown:?}, not Bokmål's {nb:?} (English: {en:?})"
        );
    }
    rep.close().await?;
    Ok(())
}
