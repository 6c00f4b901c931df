//! Stop strings over streamed text: emits only text that cannot be the start of a stop string,
//! holds back a possible prefix, and never emits the stop string itself or anything after it.

/// Matches stop strings across pushes of streamed text.
#[derive(Clone, Debug, Default)]
pub struct StopMatcher {
    /// Non-empty stop strings.
    stops: Vec<String>,
    /// Text received but not yet emitted (a possible stop-string prefix).
    pending: String,
    stopped: bool,
}

impl StopMatcher {
    /// Empty stop strings are ignored.
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
            stopped: false,
        }
    }

    /// Whether a stop string was seen.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Adds `text`; returns the text that is safe to emit now and whether a stop string was
    /// found (then the returned text is everything before it, and later pushes return nothing).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.pending.push_str(text);
        // The earliest occurrence of any stop string wins.
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = first {
            self.stopped = true;
            let mut out = std::mem::take(&mut self.pending);
            out.truncate(at);
            return (out, true);
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        let hold = self.held_suffix_len();
        let cut = self.pending.len() - hold;
        let rest = self.pending.split_off(cut);
        let out = std::mem::replace(&mut self.pending, rest);
        (out, false)
    }

    /// Ends the stream: returns the held-back text (empty once a stop string was found).
    pub fn flush(&mut self) -> String {
        if self.stopped {
            self.pending.clear();
            return String::new();
        }
        std::mem::take(&mut self.pending)
    }

    /// Forgets everything (a new stream with the same stop strings).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.stopped = false;
    }

    /// Length in bytes of the longest suffix of `pending` (starting on a char boundary) that is
    /// a proper prefix of a stop string.
    fn held_suffix_len(&self) -> usize {
        let p = self.pending.as_str();
        let mut best = 0;
        for s in &self.stops {
            let max = (s.len() - 1).min(p.len());
            for len in (best + 1..=max).rev() {
                let start = p.len() - len;
                if p.is_char_boundary(start) && s.as_bytes().starts_with(&p.as_bytes()[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}
