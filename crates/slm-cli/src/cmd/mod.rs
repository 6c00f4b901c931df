//! One module per subcommand, plus the flags and loading they share.

pub mod chat;
pub mod common;
pub mod keys;
pub mod load;
pub mod perplexity;
pub mod run;
pub mod serve;
pub mod show;
