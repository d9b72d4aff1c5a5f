//! Requests to a living wrapper through its `control` FIFO: one line each, shorter than PIPE_BUF
//! (4096 bytes), so concurrent writers never interleave.

/// What `baton kill` and `baton resume` ask of a wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Send signal N to the command's process group.
    Kill(i32),
    /// End a breakpoint with the command's real record.
    Resume,
    /// End a breakpoint as Failed.
    ResumeFail,
}

impl Request {
    pub fn to_line(self) -> String {
        match self {
            Request::Kill(signal) => format!("kill {signal}\n"),
            Request::Resume => "resume\n".to_string(),
            Request::ResumeFail => "resume fail\n".to_string(),
        }
    }

    pub fn parse(line: &str) -> Option<Request> {
        match line.trim().split_once(' ') {
            Some(("kill", n)) => n.parse().ok().filter(|s| *s > 0).map(Request::Kill),
            Some(("resume", "fail")) => Some(Request::ResumeFail),
            None if line.trim() == "resume" => Some(Request::Resume),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_garbage_is_ignored() {
        for r in [Request::Kill(15), Request::Kill(34), Request::Resume, Request::ResumeFail] {
            assert_eq!(Request::parse(&r.to_line()), Some(r));
        }
        for bad in ["", "kill", "kill -1", "kill x", "resume now", "stop"] {
            assert_eq!(Request::parse(bad), None, "{bad}");
        }
    }
}
