//! The `quicket-followup` binary: everything is in the library.

fn main() -> std::process::ExitCode {
    quicket_followup::cli::main()
}
