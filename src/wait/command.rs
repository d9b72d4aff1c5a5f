//! `baton wait`, for scripts: the same wait as `baton run`'s, with an exit code for each end.

use baton_contract::layout::Layout;

use super::{lost_sentence, Cond, WaitEnd, Waiter};
use crate::signals::Signals;
use crate::sys;

/// `baton wait`: exit 0 when every spec holds, 1 when a required step did not succeed, 125 on
/// timeout or error, 128+N when stopped by signal N.
pub fn wait_command(args: crate::cli::WaitArgs) -> i32 {
    use baton_contract::record::EXIT_BATON_FAILED;
    let conds: Result<Vec<Cond>, String> = args.specs.iter().map(|s| Cond::parse_spec(s)).collect();
    let conds = match conds {
        Ok(c) => c,
        Err(e) => {
            eprintln!("baton: {e}");
            return EXIT_BATON_FAILED;
        }
    };
    let layout = Layout::new(&args.dir.dir);
    let ended = Signals::take_over()
        .and_then(|mut signals| Waiter::new(&layout, conds)?.wait(&mut signals, args.timeout, |_| {}));
    match ended {
        Ok(WaitEnd::Ready) => 0,
        Ok(WaitEnd::PredecessorFailed { step, reason, exit_code, detail }) => {
            let how = detail.unwrap_or_else(|| match exit_code {
                Some(c) => format!("it ended {reason} with exit code {c}"),
                None => format!("it ended {reason}"),
            });
            eprintln!("baton: step {step} did not succeed: {how}");
            1
        }
        Ok(WaitEnd::PredecessorLost { step }) => {
            eprintln!("baton: {}", lost_sentence(&step));
            EXIT_BATON_FAILED
        }
        Ok(WaitEnd::Error { sentence }) => {
            eprintln!("baton: {sentence}");
            EXIT_BATON_FAILED
        }
        Ok(WaitEnd::TimedOut { missing }) => {
            let after = baton_contract::duration::human(args.timeout.unwrap_or_default());
            eprintln!("baton: gave up waiting after {after}; still missing: {}", missing.join(", "));
            EXIT_BATON_FAILED
        }
        Ok(WaitEnd::Cancelled { signal }) => {
            eprintln!("baton: cancelled by {} while waiting", sys::signal_name(signal));
            128 + signal
        }
        Err(e) => {
            eprintln!("baton: waiting failed: {e}");
            EXIT_BATON_FAILED
        }
    }
}
