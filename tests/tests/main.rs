//! The end-to-end tests, one module per file, in one test binary: linking one binary per
//! file cost about 6 s of CPU each in every clean build. Run one file's tests with its
//! module name as the filter, e.g. `cargo nextest run -p tandem-tests -E 'test(/^wine::/)'`
//! or `cargo test -p tandem-tests --test e2e wine::`.

mod admin;
mod agent;
mod agent_window;
mod call;
mod clipboard;
mod collaboration;
mod console;
mod control;
mod files;
mod https;
mod i18n;
mod impairment;
mod invitations;
mod media_clock;
mod nat;
mod netns;
mod recording;
mod restart;
mod shares;
mod webacd;
mod wine;
