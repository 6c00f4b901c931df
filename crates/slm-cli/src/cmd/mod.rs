//! One module per subcommand, plus the flags and loading they share.

pub mod bench;
pub mod catalog;
pub mod chat;
pub mod common;
pub mod compare;
pub mod convert;
pub mod export_hf;
pub mod imatrix;
pub mod keys;
pub mod load;
pub mod perplexity;
pub mod pull;
pub mod quantize;
pub mod run;
pub mod serve;
pub mod show;
pub mod store;
