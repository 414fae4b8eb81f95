//! Compiles the agent's window (ui/agent.slint) into Rust.

fn main() {
    // Fluent catalogues are read with include_str!, which cargo already tracks.
    slint_build::compile_with_config(
        "ui/agent.slint",
        slint_build::CompilerConfiguration::new().with_style("fluent".into()),
    )
    .expect("ui/agent.slint compiles");
}
